"""A spreadsheet uploaded as multipart/form-data is spooled sealed, never to a plain temporary file: the
spooled bytes on disk are not the department's rows, and no file outside the spool folder is opened for
writing while the upload is received (a framework's form parser rolls a part over 1 MiB to an
unencrypted temporary file: Starlette's ``UploadFile`` is a ``SpooledTemporaryFile``)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from baoxue.pii import FieldCipher
from baoxue.pii.files import SealedFile
from registry.feeds import router
from registry.feeds.uploads import save_multipart_file, spool_dir
from tests.registry.conftest import csv_body, dept_headers
from tests.registry.test_upload_streaming import _rows

ROWS = 20_000  # about 1.5 MiB of GBK CSV: over the 1 MiB a form parser keeps in memory
BOUNDARY = "sealed-b0undary"


def _form(body: bytes) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="note"\r\n\r\n'
            "a field beside the file\r\n"
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="file"; filename="公安.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def _plaintext_in(raw: bytes, rows: list[str]) -> list[bytes]:
    """The pieces of the rows (ID numbers, names, the header) found in ``raw``, in either encoding."""
    pieces = ["姓名,身份证号", rows[0].split(",")[1], rows[-1].split(",")[1], rows[-1].split(",")[0]]
    found = []
    for piece in pieces:
        for encoding in ("gbk", "utf-8"):
            if piece.encode(encoding) in raw:
                found.append(piece.encode(encoding))
    return found


async def test_a_multipart_file_part_is_sealed_as_it_is_spooled(tmp_path):
    cipher = FieldCipher({"k1": bytes(range(16))}, "k1")
    rows = _rows(ROWS)
    body = csv_body(*rows, encoding="gbk")
    assert len(body) > 1 << 20
    form = _form(body)

    async def chunks():
        for start in range(0, len(form), 50_000):
            yield form[start : start + 50_000]

    directory = tmp_path / "registry-feeds"
    saved = await save_multipart_file(
        chunks(),
        f"multipart/form-data; boundary={BOUNDARY}",
        directory,
        field="file",
        max_bytes=8 << 20,
        cipher=cipher,
    )
    assert saved.path.parent == directory and list(directory.iterdir()) == [saved.path]
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    raw = saved.path.read_bytes()
    assert raw != body and _plaintext_in(raw, rows) == []
    assert saved.size == len(body)
    with SealedFile(saved.path, cipher).open() as fh:  # the part's bytes exactly, the form's other field not
        assert fh.read() == body


class _Watch:
    """The files opened for writing (path, flags) while a test watches; None when none does."""

    written: list[tuple[str, int]] | None = None
    hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Records every file opened for writing (builtin open and os.open alike; a TemporaryFile is an
    # os.open of the temporary folder with O_TMPFILE) while a test watches.
    if _Watch.written is None or event != "open":
        return
    path, mode, flags = args
    if isinstance(path, int):  # os.fdopen of a descriptor whose os.open was recorded
        return
    writes = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
    if (isinstance(flags, int) and flags & writes) or (isinstance(mode, str) and set(mode) & set("wax+")):
        _Watch.written.append((os.fsdecode(path), flags))


async def test_an_upload_through_the_api_is_spooled_sealed_and_nowhere_else(
    start_service, tokens, monkeypatch
):
    svc = await start_service("registry")
    headers = dept_headers(tokens, "police")
    rows = _rows(ROWS)
    body = csv_body(*rows, encoding="gbk")
    spooled: list[tuple[Path, bytes]] = []
    submit_batch = router.service.submit_batch

    async def keeping_the_spooled_bytes(**kwargs: Any) -> Any:
        upload = kwargs["upload"]
        spooled.append((upload.path, upload.path.read_bytes()))
        return await submit_batch(**kwargs)

    monkeypatch.setattr(router.service, "submit_batch", keeping_the_spooled_bytes)
    if not _Watch.hooked:  # an audit hook cannot be removed: one per process, idle unless a test watches
        sys.addaudithook(_audit)
        _Watch.hooked = True
    _Watch.written = []
    try:
        r = await svc.client.post(
            "/v1/feeds/police/2026-09/uploads",
            headers=headers | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            params={"mode": "validate"},
            content=_form(body),
        )
        written = _Watch.written
    finally:
        _Watch.written = None
    assert r.status_code == 202, r.text
    spool = spool_dir(svc.settings).resolve()
    [(path, raw)] = spooled
    assert path.resolve().parent == spool
    assert raw != body and _plaintext_in(raw, rows) == []
    # The one file written while the upload was received is the sealed one in the spool folder.
    assert written and {Path(p).resolve() for p, _flags in written} == {path.resolve()}, written
