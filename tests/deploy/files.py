"""Paths and loaders shared by the deploy tests (no fixtures: plain functions)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVICES = {"registry": 8101, "enrollment": 8102, "casework": 8103, "notify": 8104}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all_yaml(path_or_text: Path | str) -> list[dict[str, Any]]:
    text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def compose() -> dict[str, Any]:
    data = load_yaml(DEPLOY / "compose.yaml")
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


def nats_server() -> str | None:
    """A nats-server new enough for the deploy configs (2.10+: sync_interval), or None."""
    candidates = [Path(sys.executable).parent / "nats-server", shutil.which("nats-server")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, check=False)
            match = re.search(r"v(\d+)\.(\d+)", out.stdout + out.stderr)
            if match and (int(match.group(1)), int(match.group(2))) >= (2, 10):
                return str(candidate)
    return None


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize <directory>`` parsed; fails the test with kustomize's message on error."""
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return load_all_yaml(result.stdout)
