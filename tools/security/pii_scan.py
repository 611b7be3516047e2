"""Scan for plaintext personal data at rest and in transit: databases, logs, NATS streams, dead letters.

Looks for mainland citizen ID numbers (18 characters with a valid GB 11643 check character and a real
birth date; 15-digit first-generation numbers with a real birth date), mainland mobile numbers
(``1[3-9]`` + 9 digits, a whole token) and landline numbers with their area code (``0632-1234567``,
``(0632)1234567``, ``063212345678``: 0, a 2–3 digit area code, 7–8 digits; a bare local number of 7–8
digits is indistinguishable from a date or a count and is not looked for). Findings name where (table.column and row key, file and line, stream and
sequence) and the kind, and show the value masked: the scanner's own output never leaks.

    python tools/security/pii_scan.py --database sqlite:///var/registry.db --logs var/logs/*.log \\
        --nats nats://127.0.0.1:4222 --namespace baoxue

Exit status 1 when anything is found. Importable: :func:`scan_text`, :func:`scan_database`,
:func:`scan_files`, :func:`scan_streams` return lists of :class:`Finding`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_EDGE = r"[0-9A-Za-z]"
ID18 = re.compile(
    rf"(?<!{_EDGE})([1-9]\d{{5}}(?:18|19|20)\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{{3}}[0-9Xx])(?!{_EDGE})"
)
ID15 = re.compile(
    rf"(?<!{_EDGE})([1-9]\d{{5}}\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{{3}})(?!{_EDGE})"
)
MOBILE = re.compile(rf"(?<!{_EDGE})(1[3-9]\d{{9}})(?!{_EDGE})")
LANDLINE = re.compile(
    rf"(?<!{_EDGE}|-)((?:0[1-9]\d{{1,2}}-|[(（]0[1-9]\d{{1,2}}[)）])[2-9]\d{{6,7}}|0[1-9]\d{{1,2}}[2-9]\d{{6,7}})(?!{_EDGE}|-)"
)


@dataclass(frozen=True)
class Finding:
    source: str  # database / log / stream / dead_letter
    where: str  # table.column#key, file:line, stream#seq
    kind: str  # id_number_18 / id_number_15 / mobile / landline
    masked: str


def _check_ok(id18: str) -> bool:
    total = sum(int(d) * w for d, w in zip(id18[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == id18[17].upper()


def _date_ok(yyyymmdd: str) -> bool:
    try:
        dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def _mask(value: str) -> str:
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def scan_text(text: str) -> Iterator[tuple[str, str]]:
    """(kind, masked value) of every plaintext ID number, mobile or landline number in ``text``."""
    for m in ID18.finditer(text):
        value = m.group(1)
        if _check_ok(value) and _date_ok(value[6:14]):
            yield "id_number_18", _mask(value)
    for m in ID15.finditer(text):
        value = m.group(1)
        if _date_ok("19" + value[6:12]):
            yield "id_number_15", _mask(value)
    for m in MOBILE.finditer(text):
        yield "mobile", _mask(m.group(1))
    for m in LANDLINE.finditer(text):
        yield "landline", _mask(m.group(1))


def scan_database(url: str) -> tuple[list[Finding], int]:
    """Every text-like column of every table (JSON and CLOBs included); returns findings and cells read."""
    from sqlalchemy import MetaData, String, Text, create_engine, select
    from sqlalchemy.types import JSON

    from baoxue.db import sync_url

    engine = create_engine(sync_url(url))
    findings: list[Finding] = []
    cells = 0
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
                if not columns:
                    continue
                key = list(table.primary_key.columns) or list(table.columns)[:1]
                source = "dead_letter" if table.name.endswith("dead_letter") else "database"
                result = conn.execution_options(stream_results=True).execute(select(*key, *columns))
                for row in result:
                    row_key = ",".join(str(row[i]) for i in range(len(key)))
                    for i, column in enumerate(columns, start=len(key)):
                        value = row[i]
                        if value is None:
                            continue
                        cells += 1
                        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                        for kind, masked in scan_text(text):
                            findings.append(
                                Finding(source, f"{table.name}.{column.name}#{row_key}", kind, masked)
                            )
    finally:
        engine.dispose()
    return findings, cells


def scan_files(paths: Iterable[Path]) -> tuple[list[Finding], int]:
    """Log files (or any text files), line by line; returns findings and lines read."""
    findings: list[Finding] = []
    lines = 0
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                lines += 1
                for kind, masked in scan_text(line):
                    findings.append(Finding("log", f"{path}:{number}", kind, masked))
    return findings, lines


async def scan_streams(nats_url: str, namespace: str) -> tuple[list[Finding], int]:
    """Every message still stored in every stream of ``namespace``; returns findings and messages read."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=2)
    findings: list[Finding] = []
    messages = 0
    try:
        js = nc.jetstream(timeout=10)
        streams = await js.streams_info()
        for info in streams:
            name = info.config.name
            if not name or not name.lower().startswith(namespace.lower()):
                continue
            if not info.state.messages:
                continue
            for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(name, seq=seq)
                except NotFoundError:
                    continue  # deleted or expired
                messages += 1
                text = (msg.data or b"").decode("utf-8", errors="replace")
                headers = json.dumps(msg.headers or {}, ensure_ascii=False)
                for kind, masked in scan_text(f"{msg.subject} {headers} {text}"):
                    findings.append(Finding("stream", f"{name}#{seq}", kind, masked))
    finally:
        await nc.close()
    return findings, messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", action="append", default=[], help="SQLAlchemy URL (repeatable)")
    parser.add_argument("--logs", action="append", default=[], type=Path, help="log file (repeatable)")
    parser.add_argument("--nats", help="NATS URL")
    parser.add_argument("--namespace", default="baoxue", help="event namespace of the streams")
    parser.add_argument("--json", action="store_true", help="print findings as JSON lines")
    args = parser.parse_args(argv)
    findings: list[Finding] = []
    read: Counter[str] = Counter()
    for url in args.database:
        found, cells = scan_database(url)
        findings += found
        read["database cells"] += cells
    if args.logs:
        found, lines = scan_files(args.logs)
        findings += found
        read["log lines"] += lines
    if args.nats:
        found, messages = asyncio.run(scan_streams(args.nats, args.namespace))
        findings += found
        read["stream messages"] += messages
    for f in findings:
        print(
            json.dumps(asdict(f), ensure_ascii=False)
            if args.json
            else f"{f.source} {f.where} {f.kind} {f.masked}"
        )
    by_kind = Counter(f"{f.source}/{f.kind}" for f in findings)
    print(f"read: {dict(read)}; findings: {len(findings)} {dict(by_kind)}", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
