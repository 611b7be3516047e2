"""Files of personal data on disk, sealed: a feed submission waiting in a spool folder, say.

A sealed file is written once, as a stream, and read back with random access (a CSV is read
sequentially, an ``.xlsx`` is a zip archive whose reader seeks), never decrypted to disk:

- the header is a magic line and the file's own random data key, wrapped by the service's
  :class:`~baoxue.pii.crypto.FieldCipher` (its active key id and algorithm; an old key keeps opening the
  file after a rotation as long as it stays configured);
- the body is a run of chunks of 64 KiB of plaintext, each sealed with the data key under the same
  algorithm (SM4-GCM by default), its nonce the chunk's index (a data key seals one file only), its
  associated data the header, the index and whether it is the last chunk. A changed, reordered, removed
  or appended chunk fails authentication when it is read, and so does a file cut at a chunk boundary (its
  new last chunk was not sealed as the last).

``SealedFile(path, cipher).create()`` returns a writer; ``.open()`` a seekable binary reader
(``io.BufferedReader``), ``.open_text(encoding)`` a text reader over it. A chunk that fails
authentication raises :class:`~baoxue.pii.crypto.PiiDecryptError` from the read.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
from pathlib import Path
from typing import Final

from baoxue.pii.crypto import FieldCipher, PiiDecryptError, _open, _seal, _split_token

MAGIC: Final = b"BAOXUE-SEALED-1\n"
CHUNK_BYTES: Final = 64 * 1024
_TAG_BYTES: Final = 16
_KEY_BYTES: Final = 16  # SM4 and AES-128
_MAX_HEADER_BYTES: Final = 512
_KEY_AAD: Final = b"baoxue.sealed-file.key"


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _chunk_aad(header: bytes, index: int, last: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


class SealedFile:
    """A sealed file at ``path``, its data key wrapped by ``cipher``."""

    def __init__(self, path: Path, cipher: FieldCipher) -> None:
        self.path = path
        self.cipher = cipher

    def create(self) -> SealedWriter:
        """A writer to a new file (it must not exist), readable by this process's user only."""
        return SealedWriter(self.path, self.cipher)

    def open(self) -> io.BufferedReader:
        """The plaintext, seekable; authenticated chunk by chunk as it is read."""
        return io.BufferedReader(_SealedReader(self.path, self.cipher), buffer_size=CHUNK_BYTES)

    def open_text(self, encoding: str, *, newline: str | None = None) -> io.TextIOWrapper:
        return io.TextIOWrapper(self.open(), encoding=encoding, newline=newline)

    def size(self) -> int:
        """The plaintext's length in bytes (from the file's length; no chunk is decrypted)."""
        with self.path.open("rb") as fh:
            header = _read_header(fh)
            return _plaintext_size(os.fstat(fh.fileno()).st_size - len(header))


class SealedWriter:
    """Streams plaintext into a sealed file; ``close()`` seals the last chunk. Use as a context manager:
    an exception inside it removes the partial file."""

    def __init__(self, path: Path, cipher: FieldCipher) -> None:
        data_key = secrets.token_bytes(_KEY_BYTES)
        wrapped = cipher.encrypt(base64.b64encode(data_key).decode("ascii"), associated_data=_KEY_AAD)
        self.path = path
        self._algorithm = cipher.algorithm
        self._key = data_key
        self._header = MAGIC + wrapped.encode("ascii") + b"\n"
        self._buffer = bytearray()
        self._index = 0
        self._fh = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._fh.write(self._header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:  # a full chunk is never the last one: close() seals that
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        aad = _chunk_aad(self._header, self._index, last)
        self._fh.write(_seal(self._algorithm, self._key, _nonce(self._index), plaintext, aad))
        self._index += 1

    def close(self) -> None:
        if self._fh.closed:
            return
        self._seal(bytes(self._buffer), last=True)  # possibly empty: the last chunk is always there
        self._buffer.clear()
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _read_header(fh: io.BufferedReader | io.RawIOBase | io.BufferedIOBase) -> bytes:
    head = fh.read(_MAX_HEADER_BYTES) or b""
    end = head.find(b"\n", len(MAGIC))
    if not head.startswith(MAGIC) or end < 0:
        raise PiiDecryptError("not a sealed file")
    return head[: end + 1]


def _plaintext_size(body: int) -> int:
    """Plaintext bytes of a body of ``body`` sealed bytes (full chunks, then a last one of at least a tag)."""
    full, rest = divmod(body, CHUNK_BYTES + _TAG_BYTES)
    if rest < _TAG_BYTES:  # no room for the last chunk: the file was cut
        raise PiiDecryptError("sealed file truncated")
    return full * CHUNK_BYTES + rest - _TAG_BYTES


class _SealedReader(io.RawIOBase):
    """Random access to a sealed file's plaintext; keeps the last two chunks it decrypted."""

    def __init__(self, path: Path, cipher: FieldCipher) -> None:
        super().__init__()
        self._fh = path.open("rb")
        try:
            self._header = _read_header(self._fh)
            wrapped = self._header[len(MAGIC) : -1].decode("ascii", "replace")
            self._key = base64.b64decode(cipher.decrypt(wrapped, associated_data=_KEY_AAD))
            self._algorithm = _split_token(wrapped)[0]  # the algorithm the file was written with
            body = os.fstat(self._fh.fileno()).st_size - len(self._header)
            self._size = _plaintext_size(body)
            self._chunks = -(-body // (CHUNK_BYTES + _TAG_BYTES))
        except BaseException:
            self._fh.close()
            raise
        self._position = 0
        self._cache: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def _chunk(self, index: int) -> bytes:
        if index in self._cache:
            return self._cache[index]
        self._fh.seek(len(self._header) + index * (CHUNK_BYTES + _TAG_BYTES))
        sealed = self._fh.read(CHUNK_BYTES + _TAG_BYTES)
        last = index == self._chunks - 1
        try:
            plaintext = _open(
                self._algorithm, self._key, _nonce(index), sealed, _chunk_aad(self._header, index, last)
            )
        except Exception:  # InvalidTag, or a short read of a file changed under us
            raise PiiDecryptError("sealed file chunk failed authentication") from None
        if len(self._cache) >= 2:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = plaintext
        return plaintext

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._position < self._size:
            index, offset = divmod(self._position, CHUNK_BYTES)
            chunk = self._chunk(index)
            n = min(len(view) - written, len(chunk) - offset)
            view[written : written + n] = chunk[offset : offset + n]
            written += n
            self._position += n
        return written

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
            self._cache.clear()
        super().close()
