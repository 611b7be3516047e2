"""Scan for plaintext personal data at rest and in transit: databases, logs, NATS streams, dead letters.

Looks for mainland citizen ID numbers (18 characters with a valid GB 11643 check character and a real
birth date; 15-digit first-generation numbers with a real birth date), mainland mobile numbers
(``1[3-9]`` + 9 digits, a whole token) and landline numbers with their area code (``0632-1234567``,
``(0632)1234567``, ``063212345678``: 0, a 2–3 digit area code, 7–8 digits; a bare local number of 7–8
digits is indistinguishable from a date or a count and is not looked for). Findings name where (table.column and row key, file and line, stream and
sequence) and the kind, and show the value masked: the scanner's own output never leaks.

    python tools/security/pii_scan.py --database sqlite:///var/registry.db --database sqlite:///var/notify.db \\
        --logs var/stack.log --nats nats://127.0.0.1:4222 --namespace baoxue [--stream BAOXUE_REGISTRY]

Databases: every text-like column (strings, text, JSON) of every table, the outbox's event envelopes and
each service's ``dead_letter`` table included (its findings say ``dead_letter``). Logs: line by line.
NATS: every message stored in the namespace's streams (``<NAMESPACE>_<SERVICE>``), or in the streams
named with ``--stream``: subject, headers and payload. ``--json`` prints the findings as JSON lines and the
tallies as a last JSON object.

Exit status 1 when anything is found. Importable: :func:`scan_text`, :func:`scan_database`,
:func:`scan_files`, :func:`scan_streams` return findings and what they read; :func:`scan` runs them all
and returns a :class:`Scan` (findings plus what was read, per target).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Scan:
    """What a scan found and read: ``read`` per unit (database cells, tables, dead-letter rows, log lines,
    stream messages), ``targets`` the units read per database, log file and stream."""

    findings: list[Finding] = field(default_factory=list)
    read: Counter[str] = field(default_factory=Counter)
    targets: dict[str, dict[str, int]] = field(default_factory=dict)

    def by_kind(self) -> Counter[str]:
        """Findings per kind of value: ``id_number`` (18 and 15 characters) and ``phone`` (mobile, landline)."""
        return Counter(_FAMILY[f.kind] for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able report (findings masked, at most 50 listed)."""
        by_kind = self.by_kind()
        return {
            "read": dict(self.read),
            "targets": {kind: dict(units) for kind, units in self.targets.items()},
            "findings": {"id_number": by_kind["id_number"], "phone": by_kind["phone"]},
            "findings_by_source": dict(Counter(f"{f.source}/{f.kind}" for f in self.findings)),
            "findings_sample": [asdict(f) for f in self.findings[:50]],
        }


_FAMILY = {"id_number_18": "id_number", "id_number_15": "id_number", "mobile": "phone", "landline": "phone"}


def scan_database(url: str, *, tally: Counter[str] | None = None) -> tuple[list[Finding], int]:
    """Every text-like column of every table (JSON and CLOBs included); returns findings and cells read.

    ``tally`` (optional) is given the rows of ``dead_letter`` tables read (``dead-letter rows``) and the
    tables read (``tables``)."""
    from sqlalchemy import MetaData, String, Text, create_engine, select
    from sqlalchemy.types import JSON

    from baoxue.db import sync_url

    engine = create_engine(sync_url(url))
    findings: list[Finding] = []
    cells = 0
    tally = tally if tally is not None else Counter()
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
                if not columns:
                    continue
                tally["tables"] += 1
                key = list(table.primary_key.columns) or list(table.columns)[:1]
                dead_letters = table.name.endswith("dead_letter")
                if dead_letters:
                    tally["dead-letter rows"] += 0  # reported even when there are none
                source = "dead_letter" if dead_letters else "database"
                result = conn.execution_options(stream_results=True).execute(select(*key, *columns))
                for row in result:
                    if dead_letters:
                        tally["dead-letter rows"] += 1
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


def scan_files(paths: Iterable[Path], *, per_file: dict[str, int] | None = None) -> tuple[list[Finding], int]:
    """Log files (or any text files), line by line; returns findings and lines read (``per_file``: the
    lines of each file)."""
    findings: list[Finding] = []
    lines = 0
    for path in paths:
        before = lines
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                lines += 1
                for kind, masked in scan_text(line):
                    findings.append(Finding("log", f"{path}:{number}", kind, masked))
        if per_file is not None:
            per_file[str(path)] = lines - before
    return findings, lines


def _scan_message(name: str, seq: int, subject: str, headers: object, data: bytes | None) -> list[Finding]:
    text = (data or b"").decode("utf-8", errors="replace")
    head = json.dumps(headers or {}, ensure_ascii=False)
    return [Finding("stream", f"{name}#{seq}", k, m) for k, m in scan_text(f"{subject} {head} {text}")]


async def scan_streams(
    nats_url: str,
    namespace: str | None = None,
    *,
    streams: Sequence[str] = (),
    per_stream: dict[str, int] | None = None,
) -> tuple[list[Finding], int]:
    """Every message stored in the streams named ``streams``, or else in every stream of ``namespace``
    (``<NAMESPACE>_…``); returns findings and messages read (``per_stream``: the messages of each).

    Read through an ordered consumer (flow-controlled, fast), one message at a time by sequence when that
    fails. A stream named in ``streams`` that does not exist raises: a scan of nothing must not pass."""
    import nats
    from nats.js.api import DeliverPolicy
    from nats.js.errors import NotFoundError

    from baoxue.events.bus import all_streams

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=2)
    findings: list[Finding] = []
    messages = 0
    try:
        js = nc.jetstream(timeout=10)
        if streams:
            infos = [await js.stream_info(name) for name in streams]
        else:
            prefix = (namespace or "").upper() + "_"
            infos = [i for i in await all_streams(js) if (i.config.name or "").upper().startswith(prefix)]
        for info in infos:
            name = str(info.config.name)
            read = 0
            subjects = list(info.config.subjects or [])
            if info.state.messages and len(subjects) == 1:
                sub = await js.subscribe(
                    subjects[0], stream=name, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
                )
                try:
                    while True:
                        msg = await sub.next_msg(timeout=30)
                        seq = msg.metadata.sequence.stream
                        if seq > info.state.last_seq:
                            break  # published after the scan began
                        read += 1
                        findings += _scan_message(name, seq, msg.subject, msg.headers, msg.data)
                        if seq >= info.state.last_seq:
                            break
                finally:
                    await sub.unsubscribe()
            elif info.state.messages:
                for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                    try:
                        raw = await js.get_msg(name, seq=seq)
                    except NotFoundError:
                        continue  # deleted or expired
                    read += 1
                    findings += _scan_message(name, seq, raw.subject or "", raw.headers, raw.data)
            messages += read
            if per_stream is not None:
                per_stream[name] = read
    finally:
        await nc.close()
    return findings, messages


def scan(
    *,
    databases: Sequence[str] | Mapping[str, str] = (),
    logs: Sequence[Path] = (),
    nats_url: str | None = None,
    namespace: str | None = None,
    streams: Sequence[str] = (),
) -> Scan:
    """Scan every target given. ``databases``: URLs, or label → URL; ``targets`` gives the units read per
    database (by label, else by URL without password), log file (by path) and stream (by name)."""
    from sqlalchemy.engine import make_url

    result = Scan()
    labelled = (
        dict(databases)
        if isinstance(databases, Mapping)
        else {make_url(url).render_as_string(hide_password=True): url for url in databases}
    )
    for label, url in labelled.items():
        found, cells = scan_database(url, tally=result.read)
        result.findings += found
        result.read["database cells"] += cells
        result.targets.setdefault("databases", {})[label] = cells
    if logs:
        per_file: dict[str, int] = {}
        found, lines = scan_files(logs, per_file=per_file)
        result.findings += found
        result.read["log lines"] += lines
        result.targets["logs"] = per_file
    if nats_url:
        per_stream: dict[str, int] = {}
        found, messages = asyncio.run(
            scan_streams(nats_url, namespace, streams=streams, per_stream=per_stream)
        )
        result.findings += found
        result.read["stream messages"] += messages
        result.targets["streams"] = per_stream
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", action="append", default=[], help="SQLAlchemy URL (repeatable)")
    parser.add_argument(
        "--logs", action="append", default=[], type=Path, nargs="+", help="log files (repeatable)"
    )
    parser.add_argument("--nats", help="NATS URL")
    parser.add_argument("--namespace", default="baoxue", help="event namespace of the streams (baoxue)")
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        help="a stream to read (repeatable; default: the namespace's)",
    )
    parser.add_argument("--json", action="store_true", help="print findings and tallies as JSON lines")
    args = parser.parse_args(argv)
    logs = [path for group in args.logs for path in group]
    result = scan(
        databases=args.database, logs=logs, nats_url=args.nats, namespace=args.namespace, streams=args.stream
    )
    for f in result.findings:
        print(
            json.dumps(asdict(f), ensure_ascii=False)
            if args.json
            else f"{f.source} {f.where} {f.kind} {f.masked}"
        )
    if args.json:
        report = result.as_dict()
        report.pop("findings_sample")
        print(json.dumps(report, ensure_ascii=False))
    by_kind = Counter(f"{f.source}/{f.kind}" for f in result.findings)
    print(f"read: {dict(result.read)}; findings: {len(result.findings)} {dict(by_kind)}", file=sys.stderr)
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
