"""Receiving a feed body: streamed to a spool file (never held whole in memory), hashed, size-limited."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baoxue.errors import Problem
from registry.feeds.parsing import FeedFormat

CONTENT_TYPES: dict[str, FeedFormat] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
}
EXTENSIONS: dict[str, FeedFormat] = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


def spool_dir(settings: Any) -> Path:
    """Where submissions are spooled (``var_dir``/registry-feeds)."""
    return Path(settings.var_dir) / "registry-feeds"


def batch_file(settings: Any, batch_id: str, fmt: str) -> Path:
    """The kept submission of an accepted batch: it stays until the batch is final (completed,
    validated, failed), so a batch whose process died is applied again from it."""
    return spool_dir(settings) / f"batch-{batch_id}.{fmt}"


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    fmt: FeedFormat
    sha256: str
    size: int


def format_of(content_type: str | None, filename: str | None = None) -> FeedFormat:
    """The feed format from a file name's extension or the Content-Type; 415 for anything else."""
    if filename:
        suffix = Path(filename).suffix.lower()
        if suffix in EXTENSIONS:
            return EXTENSIONS[suffix]
        if suffix == ".xls":
            raise Problem(
                "Old .xls workbooks are not accepted; save the sheet as .xlsx or CSV.",
                code="feed_unsupported_format",
                status=415,
            )
    media = (content_type or "").split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    raise Problem(
        "Send CSV (text/csv), Excel .xlsx, JSON (application/json) or NDJSON (application/x-ndjson).",
        code="feed_unsupported_format",
        status=415,
    )


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


async def save_stream(
    chunks: AsyncIterator[bytes], directory: Path, fmt: FeedFormat, *, max_bytes: int
) -> SavedUpload:
    """Write ``chunks`` to a new spool file; 413 ``feed_file_too_large`` past ``max_bytes``."""
    await asyncio.to_thread(_private_dir, directory)
    path = directory / f"{uuid.uuid4()}.{fmt}"
    digest = hashlib.sha256()
    size = 0
    try:
        # Readable by the service's user only: the file holds the department's rows in plain text until
        # the batch is final (the volume under var_dir is expected to be encrypted; docs/security.md).
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(
                        f"A feed file may be at most {max_bytes // (1 << 20)} MiB.",
                        code="feed_file_too_large",
                        status=413,
                    )
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SavedUpload(path, fmt, digest.hexdigest(), size)
