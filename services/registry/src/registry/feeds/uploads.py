"""Receiving a feed body: streamed to a sealed spool file (never held whole in memory, never plaintext on
disk), size-limited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from baoxue.errors import Problem
from baoxue.pii import FieldCipher
from baoxue.pii.files import SealedFile, SealedWriter
from registry.feeds.parsing import FeedFormat

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

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
    chunks: AsyncIterator[bytes], directory: Path, fmt: FeedFormat, *, max_bytes: int, cipher: FieldCipher
) -> SavedUpload:
    """Write ``chunks`` to a new sealed spool file; 413 ``feed_file_too_large`` past ``max_bytes``.

    The file holds the department's rows until the batch is final: it is sealed with a data key of its
    own wrapped by the service's field cipher (``baoxue.pii.files``), and readable by the service's user
    only. (A repeat is recognised by its rows, digested when the file is inspected: ``parsing.RowsDigest``.)"""
    await asyncio.to_thread(_private_dir, directory)
    path = directory / f"{uuid.uuid4()}.{fmt}"
    size = 0
    try:
        with SealedFile(path, cipher).create() as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(
                        f"A feed file may be at most {max_bytes // (1 << 20)} MiB.",
                        code="feed_file_too_large",
                        status=413,
                    )
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SavedUpload(path, fmt, size)


class _FilePart:
    """Receives one ``multipart/form-data`` body (python-multipart's push parser): the part named
    ``field`` that carries a file name is sealed into the spool as it arrives; other parts are dropped."""

    def __init__(self, field: str, directory: Path, *, max_bytes: int, cipher: FieldCipher) -> None:
        self.field, self.directory, self.max_bytes, self.cipher = field, directory, max_bytes, cipher
        self.headers: dict[bytes, bytes] = {}
        self._name, self._value = b"", b""
        self.writer: SealedWriter | None = None
        self.fmt: FeedFormat | None = None
        self.size = 0
        self.saw_field_without_file = False
        self.done: SavedUpload | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: setattr(self, "_name", self._name + data[start:end]),
            "on_header_value": lambda data, start, end: setattr(
                self, "_value", self._value + data[start:end]
            ),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self.headers = {}

    def _header_end(self) -> None:
        self.headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != self.field or self.done is not None or self.writer is not None:
            return
        if b"filename" not in options:
            self.saw_field_without_file = True
            return
        filename = options[b"filename"].decode("utf-8", "replace")
        self.fmt = format_of(self.headers.get(b"content-type", b"").decode("latin-1"), filename)
        self.writer = SealedFile(self.directory / f"{uuid.uuid4()}.{self.fmt}", self.cipher).create()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.writer is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise Problem(
                f"A feed file may be at most {self.max_bytes // (1 << 20)} MiB.",
                code="feed_file_too_large",
                status=413,
            )
        self.writer.write(data[start:end])

    def _end(self) -> None:
        if self.writer is not None and self.fmt is not None:
            self.writer.close()
            self.done = SavedUpload(self.writer.path, self.fmt, self.size)
            self.writer = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.done is not None:
            self.done.path.unlink(missing_ok=True)


async def save_multipart_file(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    directory: Path,
    *,
    field: str,
    max_bytes: int,
    cipher: FieldCipher,
) -> SavedUpload:
    """The file part ``field`` of a ``multipart/form-data`` body, sealed into the spool as it streams in
    (like :func:`save_stream`): it is never held whole in memory nor written to disk in plain text, as a
    framework's form parsing would do (Starlette rolls a part over 1 MiB to an unencrypted temporary
    file). 422 ``file_required`` when the body has no such part with a file name."""
    media, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise Problem(
            "Send the spreadsheet as multipart/form-data with a file part named 'file'.",
            code="file_required",
            status=422,
        )
    await asyncio.to_thread(_private_dir, directory)
    part = _FilePart(field, directory, max_bytes=max_bytes, cipher=cipher)
    parser = MultipartParser(boundary, cast("MultipartCallbacks", part.callbacks()))
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError:
        part.abort()
        raise Problem(
            "The multipart body is malformed or ends early.", code="feed_file_truncated", status=422
        ) from None
    except BaseException:
        part.abort()
        raise
    if part.done is None:
        part.abort()
        if part.writer is not None:  # the file part began and never ended: the body broke off
            raise Problem(
                "The multipart body is malformed or ends early.", code="feed_file_truncated", status=422
            )
        if part.saw_field_without_file:
            raise Problem(
                "Send the spreadsheet as a file part named 'file'.", status=422, code="file_required"
            )
        raise Problem(
            "The form has no part named 'file'.",
            status=422,
            code="file_required",
            errors=[{"field": field, "code": "missing", "message": "a file part named 'file' is required"}],
        )
    return part.done
