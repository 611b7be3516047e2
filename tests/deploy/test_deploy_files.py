"""The deploy files hold together: every YAML parses, compose.yaml follows the compose specification's
structure (a vendored subset: keys, healthchecks, dependency conditions, referenced files, variables),
the gateway routes every service, and the Containerfile builds a non-root image from the hashed lock.

Kubernetes manifests: test_kubernetes.py; NATS: test_nats_config.py; image helpers: test_image_tools.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.files import DEPLOY, REPO, SERVICES, compose, load_all_yaml, yaml_files

# --- a subset of the compose specification (compose-spec.json), enough to catch typos and drift -----
TOP_LEVEL = {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs"}
SERVICE_KEYS = {
    "annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota",
    "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "links",
    "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform",
    "ports", "post_start", "pre_stop", "privileged", "profiles", "pull_policy", "read_only", "restart",
    "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts",
    "volumes", "volumes_from", "working_dir",
}  # fmt: skip
HEALTHCHECK_KEYS = {"disable", "interval", "retries", "test", "timeout", "start_period", "start_interval"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")


def app_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services that run the Baoxue image (their environment names BAOXUE_SERVICE)."""
    return {
        name: svc
        for name, svc in spec["services"].items()
        if "BAOXUE_SERVICE" in (svc.get("environment") or {})
    }


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert len(files) >= 10, files
    for path in files:
        docs = load_all_yaml(path)
        assert docs, f"{path} is empty"
        assert all(isinstance(doc, dict) for doc in docs), f"{path}: a document is not a mapping"


def test_compose_keys_follow_the_specification() -> None:
    spec = compose()
    for key in spec:
        assert key in TOP_LEVEL or key.startswith("x-"), f"unknown top-level key {key!r}"
    assert "version" not in spec, "the compose specification dropped `version`; compose warns on it"
    for name, svc in spec["services"].items():
        unknown = {k for k in svc if k not in SERVICE_KEYS and not k.startswith("x-")}
        assert not unknown, f"service {name}: unknown keys {sorted(unknown)}"
        assert "image" in svc or "build" in svc, f"service {name} has neither image nor build"
        assert RESTART.match(str(svc.get("restart", "no"))), f"service {name}: bad restart {svc['restart']!r}"
        if "stop_grace_period" in svc:
            assert DURATION.match(svc["stop_grace_period"]), name
        image = str(svc.get("image", ""))
        assert not image.endswith(":latest"), f"service {name} uses a latest tag"
        assert re.search(r":[0-9][\w.-]*\}?$", image), (
            f"service {name}: image {image!r} is not pinned to a version"
        )


def test_compose_healthchecks_and_dependencies() -> None:
    spec = compose()
    services = spec["services"]
    for name, svc in services.items():
        one_shot = svc.get("restart") == "no"
        if not one_shot:
            check = svc.get("healthcheck")
            assert check, f"long-running service {name} has no healthcheck"
            assert set(check) <= HEALTHCHECK_KEYS, f"{name}: healthcheck keys {sorted(check)}"
            assert isinstance(check["test"], list) and check["test"][0] in ("CMD", "CMD-SHELL"), name
            for key in ("interval", "timeout", "start_period"):
                if key in check:
                    assert DURATION.match(check[key]), f"{name}: healthcheck {key} {check[key]!r}"
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert rule.get("condition") in CONDITIONS, (
                f"{name} → {target}: condition {rule.get('condition')!r}"
            )
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy: no check"
            if rule["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is waited for but restarts"


def test_compose_runs_each_service_after_its_own_migration() -> None:
    spec = compose()
    apps = app_services(spec)
    servers = {n: s for n, s in apps.items() if s.get("command") == ["serve"]}
    migrations = {n: s for n, s in apps.items() if s.get("command") == ["migrate"]}
    assert {s["environment"]["BAOXUE_SERVICE"] for s in servers.values()} == set(SERVICES)
    assert {s["environment"]["BAOXUE_SERVICE"] for s in migrations.values()} == set(SERVICES)
    for name, svc in {**servers, **migrations}.items():
        service = svc["environment"]["BAOXUE_SERVICE"]
        env = svc["environment"]
        url = env.get(f"{service.upper()}_DATABASE_URL", "")
        assert url.startswith("postgresql://") and url.endswith(f"/baoxue_{service}"), f"{name}: {url!r}"
        assert "@postgres:5432/" in url and url.startswith(f"postgresql://{service}:"), name
        assert env["BAOXUE_STREAM_REPLICAS"] == "3", f"{name}: streams must be replicated three times"
        assert "nats:4222" in env["BAOXUE_NATS_URL"], name
        assert svc.get("read_only") is True and "ALL" in svc.get("cap_drop", []), f"{name} is not locked down"
        assert svc["build"]["dockerfile"] == "deploy/Containerfile"
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve().is_file()
    for name, svc in servers.items():
        service = svc["environment"]["BAOXUE_SERVICE"]
        own_migration = next(
            n for n, m in migrations.items() if m["environment"]["BAOXUE_SERVICE"] == service
        )
        assert svc["depends_on"][own_migration]["condition"] == "service_completed_successfully", name
        for node in ("nats-1", "nats-2", "nats-3", "postgres"):
            assert svc["depends_on"][node]["condition"] == "service_healthy", f"{name} → {node}"
        assert svc["expose"] == [str(SERVICES[service])], name
        assert "/ready" in svc["healthcheck"]["test"], f"{name}: compose health should mean ready"


def test_compose_has_a_three_node_nats_cluster_on_one_config() -> None:
    spec = compose()
    nodes = {n: s for n, s in spec["services"].items() if n.startswith("nats-")}
    assert sorted(nodes) == ["nats-1", "nats-2", "nats-3"]
    config = (DEPLOY / "nats" / "nats.conf").read_text(encoding="utf-8")
    data_volumes = set()
    for name, node in nodes.items():
        assert node["environment"]["NATS_SERVER_NAME"] == name
        assert f"nats-route://{name}:6222" in config, f"nats.conf has no route to {name}"
        assert "nats" in node["networks"]["default"]["aliases"], f"{name} does not answer to `nats`"
        mounts = dict(v.split(":", 1)[::-1] for v in node["volumes"] if not v.startswith("./"))
        data_volumes.add(mounts["/data"])
        assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in node["volumes"]
    assert len(data_volumes) == 3, "each NATS node needs a volume of its own"


def test_compose_files_volumes_and_secrets_exist() -> None:
    spec = compose()
    declared_volumes = set(spec.get("volumes") or {})
    declared_secrets = set(spec.get("secrets") or {})
    for name, svc in spec["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"
        for secret in svc.get("secrets", []):
            assert secret in declared_secrets, f"{name} uses undeclared secret {secret}"
    used = {m.split(":", 1)[0] for s in spec["services"].values() for m in s.get("volumes", [])}
    assert declared_volumes <= used, f"declared but unused volumes: {declared_volumes - used}"


def test_compose_variables_are_defaulted_or_documented() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    documented = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    variables = VARIABLE.findall(text)
    assert variables, "compose.yaml interpolates nothing: where do the secrets come from?"
    for name, modifier in variables:
        if modifier.startswith((":-", "-")):
            continue
        assert name in documented, f"${{{name}}} is required by compose.yaml but missing from env.example"
    for name, value in documented.items():
        if re.search(r"PASSWORD|_KEY$|_KEYS$", name):
            assert "REPLACE_WITH" in value, f"env.example must not carry a real secret ({name})"
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "secrets/" in ignored


def test_gateway_routes_every_service_and_strips_its_prefix() -> None:
    conf = (DEPLOY / "gateway" / "nginx.conf").read_text(encoding="utf-8")
    assert conf.count("{") == conf.count("}"), "unbalanced braces in nginx.conf"
    for service, port in SERVICES.items():
        assert re.search(rf"upstream {service}\s*\{{\s*server {service}:{port};", conf), service
        block = re.search(rf"location /{service}/ \{{(.*?)\}}", conf, re.S)
        assert block, f"no location /{service}/"
        # proxy_pass with a URI part ("/") replaces the matched prefix: /registry/x → /x
        assert re.search(rf"proxy_pass http://{service}/;", block.group(1)), service
    spec = compose()
    assert spec["services"]["gateway"]["volumes"] == ["./gateway/nginx.conf:/etc/nginx/nginx.conf:ro"]


class TestContainerfile:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")

    def stages(self) -> list[str]:
        return re.split(r"(?m)^FROM ", self.text)[1:]

    def test_multi_stage_on_python_311_slim(self) -> None:
        assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim", self.text)
        stages = self.stages()
        assert len(stages) >= 2
        assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)

    def test_runtime_stage_is_non_root_with_a_healthcheck(self) -> None:
        final = self.stages()[-1]
        users = re.findall(r"(?m)^USER (\S+)", final)
        assert users and users[-1].split(":")[0] not in ("0", "root"), users
        check = re.search(r"(?m)^HEALTHCHECK .*\n(\s+CMD .*)", final)
        assert check and "healthcheck.py" in check.group(1)
        assert re.search(r"(?m)^ENTRYPOINT \[\"docker-entrypoint.sh\"\]", final)

    def test_installs_only_from_the_hashed_lock(self) -> None:
        assert "--require-hashes" in self.text and "requirements.lock" in self.text
        assert "--no-index" in self.text, "the workspace packages must not reach an index"
        assert not re.search(r"https?://", self.text), "no registry or download URLs in the recipe"
        installs = re.findall(r"pip install ([^\n\\&]*)", self.text)
        for args in installs:
            assert "--require-hashes" in args or "--no-index" in args, f"unchecked install: {args}"

    def test_copied_files_exist_and_pass_the_ignore_file(self) -> None:
        ignore = (DEPLOY / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
        sources = []
        for line in re.findall(r"(?m)^COPY (?!--from)(.*)$", self.text):
            parts = [p for p in line.split() if not p.startswith("--")]
            sources.extend(parts[:-1])
        assert sources
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert any(source == a or source.startswith(a + "/") for a in allowed), f"{source} is ignored"


@pytest.mark.parametrize("path", ["docker-entrypoint.sh", "postgres/init-databases.sh"])
def test_scripts_are_executable(path: str) -> None:
    script = DEPLOY / path
    assert script.stat().st_mode & 0o111, f"{path} is not executable"
    assert script.read_text(encoding="utf-8").startswith("#!/"), path


def test_documentation_covers_the_deploy_files() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    for needed in ("sync_interval", "BAOXUE_STREAM_REPLICAS", "kubectl kustomize", "docker compose",
                   "stream backup", "pg_dump", "BAOXUE_PII_ACTIVE_KEY_ID", "blind index", "Citus"):  # fmt: skip
        assert needed in doc, f"docs/deployment.md does not mention {needed}"
    for path in (Path("deploy/compose.yaml"), Path("deploy/Containerfile"), Path("deploy/k8s")):
        assert str(path) in doc
