"""Trace ids and JSON logs.

Every request and every consumed event runs with a trace id in a context variable; logs carry it,
responses return it (``X-Trace-Id``), and the outbox copies it into event headers so one trace follows
a child's record from the registry to notify. Log records hold codes and ids, never personal data.
"""

from __future__ import annotations

import contextvars
import json
import logging
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
            "message": record.getMessage(),
            "trace_id": _trace_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = value
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
