"""The leak scan at the end of the year: ``tools/security/pii_scan.py`` over every service's database
(every text column of every table, outbox envelopes and dead letters included), the services' log
output, and every message stored on the run's NATS streams.

Not an API call: the scanner reads the stores the way an inspector with access to the machine would. The
demo knows where they are when it started the embedded stack (``<out>/stack``: the SQLite files, the
stack's log, the embedded NATS server the log names); against a stack it did not start, the
``--scan-*`` options say where (else the scan is skipped and the summary says so).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from demo.api import SERVICES
from demo.context import Demo

_SCANNER = Path(__file__).resolve().parents[2] / "security" / "pii_scan.py"
_NATS_LINE = re.compile(r"NATS \(JetStream, embedded\)\s+(nats://\S+)")


@dataclass
class ScanTargets:
    databases: dict[str, str] = field(default_factory=dict)
    """service → database URL"""
    logs: list[Path] = field(default_factory=list)
    nats_url: str | None = None
    namespace: str = "baoxue"
    """the event namespace: the streams are ``<NAMESPACE>_<SERVICE>``"""

    @property
    def streams(self) -> list[str]:
        return [f"{self.namespace}_{service}".upper() for service in SERVICES]


def embedded_targets(stack_dir: Path) -> ScanTargets:
    """Where the embedded stack (``baoxue run`` with ``BAOXUE_VAR_DIR=stack_dir``) keeps things."""
    databases = {
        name: os.environ.get(f"{name.upper()}_DATABASE_URL") or f"sqlite:///{stack_dir / (name + '.db')}"
        for name in SERVICES
    }
    log = stack_dir / "stack.log"
    nats_url = os.environ.get("BAOXUE_NATS_URL")
    if not nats_url and log.exists():
        found = _NATS_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
        nats_url = found.group(1) if found else None
    namespace = os.environ.get("BAOXUE_EVENT_NAMESPACE", "baoxue")
    return ScanTargets(databases=databases, logs=[log], nats_url=nats_url, namespace=namespace)


def _scanner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pii_scan", _SCANNER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pii_scan", module)  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def scan(demo: Demo, targets: ScanTargets | None) -> dict[str, Any]:
    """Run the scanner over ``targets``; the report counts what was read (per database, log file and
    stream) and the plaintext ID numbers and phone numbers found (masked samples). A finding is an
    anomaly of the run; so is a target that cannot be read (a scan of nothing must not say 0)."""
    if targets is None:
        demo.say(
            "leak_scan", "skipped: the stack was not started by the demo and no --scan-* option was given"
        )
        return {"skipped": "the demo did not start the stack; give --scan-database/--scan-log/--scan-nats"}
    missing = [
        url for url in targets.databases.values() if url.startswith("sqlite:") and not Path(url[10:]).exists()
    ] + [str(p) for p in targets.logs if not p.exists()]
    if missing or not targets.nats_url:
        demo.anomaly("leak_scan", f"cannot scan: missing {missing or 'the NATS URL'}")
        return {"error": f"missing {missing or 'the NATS URL'}"}
    pii_scan = _scanner()
    result = pii_scan.scan(
        databases=targets.databases,
        logs=targets.logs,
        nats_url=targets.nats_url,
        streams=targets.streams,
    )
    report: dict[str, Any] = result.as_dict()
    report["targets"]["logs"] = {Path(k).name: n for k, n in report["targets"].get("logs", {}).items()}
    found = report["findings"]
    demo.say(
        "leak_scan",
        f"read {dict(result.read)}: {found['id_number']} plaintext ID numbers, {found['phone']} phone numbers",
    )
    if found["id_number"] or found["phone"]:
        demo.anomaly("leak_scan", f"plaintext personal data found: {report['findings_by_source']}")
    return report
