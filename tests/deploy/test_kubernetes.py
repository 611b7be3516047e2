"""Kubernetes manifests: every source file is a well-formed object; the base and the production
overlay render with `kubectl kustomize` and the rendered objects meet the deployment rules (probes on
/health and /ready, resources, pinned images, secrets only by reference, replicas and budgets).

Without kubectl the rendering tests skip (Debian: `apt-get install -y kubernetes-client`); the source
checks still run.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.files import DEPLOY, SERVICES, kubectl, kustomize, load_all_yaml

K8S = DEPLOY / "k8s"
NOT_MANIFESTS = {"kustomization.yaml", "nats-helm-values.yaml"}
CLUSTER_SCOPED = {"Namespace"}
SECRET_NAMES = re.compile(r"PII_KEYS$|BLIND_INDEX_KEY$|PASSWORD$|DATABASE_URL$|NATS_URL$")
needs_kubectl = pytest.mark.skipif(
    kubectl() is None,
    reason="kubectl not found: `apt-get install -y kubernetes-client` renders the kustomizations",
)

Obj = dict[str, Any]


def source_manifests(root: str = "") -> list[Obj]:
    """Objects in the YAML files under k8s/<root> (overlay patches are partial objects)."""
    docs = []
    for path in sorted((K8S / root).rglob("*.yaml")):
        if path.name not in NOT_MANIFESTS:
            docs.extend(load_all_yaml(path))
    return docs


def containers(obj: Obj) -> list[Obj]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def of_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def check_basics(obj: Obj) -> None:
    assert (isinstance(obj.get("apiVersion"), str) and "/" in obj["apiVersion"]) or obj[
        "apiVersion"
    ] == "v1", obj
    assert isinstance(obj.get("kind"), str), obj
    name = obj.get("metadata", {}).get("name")
    assert isinstance(name, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name


def check_image(image: str) -> None:
    assert ":" in image.rsplit("/", 1)[-1], f"{image} has no tag"
    assert not image.endswith(":latest"), f"{image} uses latest"


def check_service_deployment(dep: Obj) -> None:
    name = dep["metadata"]["name"]
    (container,) = containers(dep)
    pod = dep["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["BAOXUE_SERVICE"]["value"] == name
    assert env[f"{name.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "baoxue-database",
        "key": name,
    }
    assert container["args"] == ["serve"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": SERVICES[name]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name}: {kind}"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def check_no_literal_secrets(objs: list[Obj]) -> None:
    for obj in objs:
        assert obj["kind"] != "Secret", f"Secret {obj['metadata']['name']} is committed; reference it instead"
        if obj["kind"] == "ConfigMap":
            leaked = [k for k in obj.get("data", {}) if SECRET_NAMES.search(k)]
            assert not leaked, f"ConfigMap {obj['metadata']['name']} carries secrets {leaked}"
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            for container in containers(obj):
                for var in container.get("env", []):
                    if SECRET_NAMES.search(var["name"]):
                        assert "valueFrom" in var, f"{obj['metadata']['name']}: {var['name']} is a literal"


def test_every_source_manifest_is_a_named_object() -> None:
    for obj in source_manifests():
        check_basics(obj)
    base = source_manifests("base")
    assert len(base) >= 15
    check_no_literal_secrets(base)


def test_source_deployments_follow_the_rules() -> None:
    deployments = of_kind(source_manifests("base"), "Deployment")
    assert set(deployments) == set(SERVICES)
    for dep in deployments.values():
        check_service_deployment(dep)


def test_kustomizations_list_files_that_exist() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        (spec,) = load_all_yaml(path)
        for entry in (
            spec.get("resources", []) + spec.get("bases", []) + spec.get("patchesStrategicMerge", [])
        ):
            assert (path.parent / entry).exists(), f"{path}: {entry} does not exist"
        for generator in spec.get("configMapGenerator", []):
            for file in generator.get("files", []):
                assert (path.parent / file).is_file(), f"{path}: {file} does not exist"


@needs_kubectl
@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_kustomization_renders_valid_objects(target: str) -> None:
    objs = kustomize(K8S / target)
    for obj in objs:
        check_basics(obj)
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == "baoxue", f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            for container in containers(obj):
                check_image(container["image"])
                assert container.get("resources", {}).get("requests"), obj["metadata"]["name"]
    check_no_literal_secrets(objs)

    deployments = of_kind(objs, "Deployment")
    assert set(deployments) == set(SERVICES)
    for dep in deployments.values():
        check_service_deployment(dep)
        config_refs = [
            e["configMapRef"]["name"] for e in containers(dep)[0]["envFrom"] if "configMapRef" in e
        ]
        assert all(ref in of_kind(objs, "ConfigMap") for ref in config_refs), config_refs

    services = of_kind(objs, "Service")
    for name, port in SERVICES.items():
        svc = services[name]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]

    jobs = of_kind(objs, "Job")
    assert set(jobs) == {f"{name}-migrate" for name in SERVICES}
    for name in SERVICES:
        (container,) = containers(jobs[f"{name}-migrate"])
        assert container["args"] == ["migrate"]
        assert {"name": "BAOXUE_SERVICE", "value": name} in container["env"]
        job_labels = jobs[f"{name}-migrate"]["spec"]["template"]["metadata"]["labels"]
        assert not services[name]["spec"]["selector"].items() <= job_labels.items(), (
            "Service would select the Job"
        )

    nats = of_kind(objs, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (container,) = containers(nats)
    assert container["livenessProbe"]["httpGet"]["path"].startswith("/healthz")
    (config_volume,) = [v for v in nats["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    nats_config = of_kind(objs, "ConfigMap")[config_volume["configMap"]["name"]]
    assert "sync_interval: always" in nats_config["data"]["nats.conf"]

    (config,) = [c for n, c in of_kind(objs, "ConfigMap").items() if n.startswith("baoxue-config")]
    assert config["data"]["BAOXUE_STREAM_REPLICAS"] == "3"

    (ingress,) = of_kind(objs, "Ingress").values()
    routes = {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routes == {f"/{name}(/|$)(.*)": name for name in SERVICES}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"


@needs_kubectl
def test_production_overlay_is_redundant() -> None:
    objs = kustomize(K8S / "overlays" / "production")
    (config,) = [c for n, c in of_kind(objs, "ConfigMap").items() if n.startswith("baoxue-config")]
    assert config["data"]["BAOXUE_ENVIRONMENT"] == "production"
    budgets = of_kind(objs, "PodDisruptionBudget")
    workloads = {**of_kind(objs, "Deployment"), **of_kind(objs, "StatefulSet")}
    for name, workload in workloads.items():
        assert workload["spec"]["replicas"] >= 2, f"{name} has fewer than two replicas"
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [
            b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        budget = covering[0]["spec"]
        if "minAvailable" in budget:
            assert 1 <= budget["minAvailable"] < workload["spec"]["replicas"], name
        else:
            assert budget["maxUnavailable"] == 1, name
    (ingress,) = of_kind(objs, "Ingress").values()
    assert ingress["spec"]["tls"][0]["secretName"] == "baoxue-tls"


def admits(policies: list[Obj], pod: dict[str, str], port: str, source: dict[str, str]) -> bool:
    """Whether some policy lets a pod of this namespace labelled ``source`` reach ``pod`` on ``port``."""
    for policy in policies:
        if not policy["spec"]["podSelector"].get("matchLabels", {}).items() <= pod.items():
            continue
        for rule in policy["spec"].get("ingress", []):
            if port not in [p["port"] for p in rule.get("ports", [])]:
                continue
            for peer in rule.get("from", []):
                same_namespace = "podSelector" in peer and "namespaceSelector" not in peer
                if same_namespace and peer["podSelector"].get("matchLabels", {}).items() <= source.items():
                    return True
    return False


@needs_kubectl
def test_network_policies_admit_only_the_intended_traffic() -> None:
    objs = kustomize(K8S / "overlays" / "production")
    policies = list(of_kind(objs, "NetworkPolicy").values())
    deny = of_kind(objs, "NetworkPolicy")["default-deny-ingress"]["spec"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    pods = {
        name: dep["spec"]["template"]["metadata"]["labels"]
        for name, dep in of_kind(objs, "Deployment").items()
    }
    nats = of_kind(objs, "StatefulSet")["nats"]["spec"]["template"]["metadata"]["labels"]
    for labels in pods.values():
        assert admits(policies, labels, "http", pods["casework"])  # a sibling service
        assert admits(policies, nats, "client", labels)  # publishing and consuming events
        assert not admits(policies, nats, "cluster", labels), "only NATS pods may open cluster routes"
    assert admits(policies, nats, "cluster", nats)
    ingress_peers = [
        peer
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if "namespaceSelector" in peer
    ]
    assert ingress_peers, "the ingress controller cannot reach the services"
