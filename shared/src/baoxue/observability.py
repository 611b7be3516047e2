"""Trace ids and JSON logs.

Every request and every consumed event runs with a trace id in a context variable; logs carry it,
responses return it (``X-Trace-Id``), and the outbox copies it into event headers so one trace follows
a child's record from the registry to notify. Log records hold codes and ids, never personal data;
the JSON formatter is the safety net behind that rule: it redacts the values of fields named like
personal data and masks ID numbers and mobile numbers wherever they appear in a record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("baoxue_trace_id", default=None)


def new_trace_id() -> str:
    """A fresh 32-hex-digit trace id (W3C trace-context sized)."""
    return secrets.token_hex(16)


def current_trace_id() -> str:
    """The trace id of the work in progress; a fresh one when none is set."""
    value = _trace_id.get()
    if value is None:
        value = new_trace_id()
        _trace_id.set(value)
    return value


def set_trace_id(value: str | None) -> contextvars.Token[str | None]:
    """Bind ``value`` (or a fresh id) as the current trace id; returns the token to reset it."""
    return _trace_id.set(value or new_trace_id())


def reset_trace_id(token: contextvars.Token[str | None]) -> None:
    _trace_id.reset(token)


def trace_id_from_traceparent(header: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (``00-<32 hex>-<16 hex>-<2 hex>``), if well formed."""
    if not header:
        return None
    parts = header.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and all(c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return None


PERSONAL_FIELDS = frozenset(
    {"name", "child_name", "guardian", "guardian_name", "addressee", "id_number", "birth_date", "raw", "row"}
)
"""Names of ``extra`` fields (at any depth) whose values are personal data and never logged."""
_PERSONAL_PARTS = ("phone", "mobile", "address", "id_number")  # e.g. guardian_phone, hukou_address
# An ID number (GB 11643: 17 digits and a check character; the old 15-digit form) or a mainland mobile
# number, standing alone: not inside a longer run of digits or letters (a trace id, a blind index).
_PERSONAL_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[0-9Xx]|\d{15}|1[3-9]\d{9})(?![0-9A-Za-z])")
REDACTED = "[redacted]"


def _is_personal(field: str) -> bool:
    lowered = field.lower()
    return lowered in PERSONAL_FIELDS or any(part in lowered for part in _PERSONAL_PARTS)


def redact(value: object) -> object:
    """``value`` with personal fields redacted and ID and mobile numbers masked, through dicts and lists."""
    if isinstance(value, str):
        return _PERSONAL_NUMBER.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_personal(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace id and any ``extra`` fields."""

    _standard = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "trace_id": _trace_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = REDACTED if _is_personal(key) else redact(value)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of database errors can echo parameters (personal data).
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
