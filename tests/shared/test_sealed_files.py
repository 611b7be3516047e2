"""Sealed files: personal data at rest in a spool folder is ciphertext, read back with random access,
and any change to the file is detected when the changed part is read."""

from __future__ import annotations

import io
import random
import stat
import zipfile

import pytest

from baoxue.pii.crypto import FieldCipher, PiiDecryptError
from baoxue.pii.files import CHUNK_BYTES, SealedFile

K1 = bytes(range(16))
K2 = bytes(range(16, 32))
ID_NUMBER = "370406201605020659"


def _cipher(algorithm="sm4-gcm"):
    return FieldCipher({"k1": K1, "k2": K2}, "k1", algorithm=algorithm)


def _write(path, data, cipher, pieces=(1, 7, 4096, CHUNK_BYTES, 3 * CHUNK_BYTES + 5)):
    sealed = SealedFile(path, cipher)
    rng = random.Random(len(data))
    with sealed.create() as writer:
        at = 0
        while at < len(data):  # writes of uneven sizes, across chunk boundaries
            n = rng.choice(pieces)
            writer.write(data[at : at + n])
            at += n
    return sealed


@pytest.mark.parametrize("algorithm", ["sm4-gcm", "aes-gcm"])
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 5 * CHUNK_BYTES + 123]
)
def test_round_trip_at_every_chunk_boundary(tmp_path, size, algorithm):
    data = random.Random(size).randbytes(size)
    sealed = _write(tmp_path / "f", data, _cipher(algorithm))
    assert sealed.size() == size
    with sealed.open() as fh:
        assert fh.read() == data
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_the_file_on_disk_holds_no_plaintext(tmp_path):
    text = ("姓名,身份证号\n" + f"王小明,{ID_NUMBER}\n" * 5000).encode()
    _write(tmp_path / "f", text, _cipher())
    raw = (tmp_path / "f").read_bytes()
    assert ID_NUMBER.encode() not in raw
    assert "王小明".encode() not in raw
    assert len(raw) > len(text)  # every chunk carries its tag


def test_random_access_matches_the_plaintext(tmp_path):
    data = random.Random(1).randbytes(4 * CHUNK_BYTES + 999)
    sealed = _write(tmp_path / "f", data, _cipher())
    rng = random.Random(2)
    with sealed.open() as fh:
        for _ in range(200):
            at = rng.randrange(len(data) + 10)
            n = rng.randrange(3 * CHUNK_BYTES)
            fh.seek(at)
            assert fh.read(n) == data[at : at + n]
        fh.seek(-7, io.SEEK_END)
        assert fh.read() == data[-7:]
        assert fh.tell() == len(data)


def test_a_zip_archive_reads_from_a_sealed_file(tmp_path):
    """An .xlsx workbook is a zip: its reader seeks to the central directory at the end, then back."""
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", "甲" * 100_000)
        archive.writestr("b.bin", random.Random(3).randbytes(300_000))
    sealed = _write(tmp_path / "f.xlsx", plain.getvalue(), _cipher())
    with sealed.open() as fh, zipfile.ZipFile(fh) as archive:
        assert archive.read("a.txt").decode() == "甲" * 100_000
        assert archive.read("b.bin") == random.Random(3).randbytes(300_000)


def test_text_reading_with_the_submitted_encoding(tmp_path):
    text = "姓名,身份证号\r\n" + "".join(f"张{i},{ID_NUMBER}\r\n" for i in range(20_000))
    sealed = _write(tmp_path / "f.csv", text.encode("gb18030"), _cipher())
    with sealed.open_text("gb18030", newline="") as fh:
        assert fh.read() == text


def test_an_old_key_still_opens_the_file_after_rotation(tmp_path):
    data = b"x" * (CHUNK_BYTES + 10)
    _write(tmp_path / "f", data, FieldCipher({"k1": K1}, "k1"))
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2", algorithm="aes-gcm")
    with SealedFile(tmp_path / "f", rotated).open() as fh:
        assert fh.read() == data
    with pytest.raises(PiiDecryptError):  # the old key removed: the file cannot be opened
        SealedFile(tmp_path / "f", FieldCipher({"k2": K2}, "k2")).open()


def _tampered(tmp_path, change):
    data = random.Random(5).randbytes(3 * CHUNK_BYTES + 100)
    path = tmp_path / "f"
    _write(path, data, _cipher())
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(change(raw)))
    return SealedFile(path, _cipher())


def _header_length(raw):
    return raw.index(b"\n", raw.index(b"\n") + 1) + 1


CHUNK_ON_DISK = CHUNK_BYTES + 16


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), id="flipped bit in the last chunk"),
        pytest.param(
            lambda raw: (
                raw[: _header_length(raw) + 10]
                + bytes([raw[_header_length(raw) + 10] ^ 0x80])
                + raw[_header_length(raw) + 11 :]
            ),
            id="flipped bit in the first chunk",
        ),
        pytest.param(
            lambda raw: raw[: _header_length(raw) + 2 * CHUNK_ON_DISK], id="cut at a chunk boundary"
        ),
        pytest.param(lambda raw: raw[:-5], id="cut inside the last chunk"),
        pytest.param(
            lambda raw: (
                raw[: _header_length(raw)]
                + raw[_header_length(raw) + CHUNK_ON_DISK : _header_length(raw) + 2 * CHUNK_ON_DISK]
                + raw[_header_length(raw) : _header_length(raw) + CHUNK_ON_DISK]
                + raw[_header_length(raw) + 2 * CHUNK_ON_DISK :]
            ),
            id="two chunks swapped",
        ),
        pytest.param(lambda raw: raw + raw[-40:], id="bytes appended"),
    ],
)
def test_any_change_fails_authentication_when_read(tmp_path, change):
    sealed = _tampered(tmp_path, change)
    with pytest.raises(PiiDecryptError), sealed.open() as fh:
        fh.read()


def test_a_plain_file_is_not_a_sealed_file(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(f"姓名,身份证号\n王小明,{ID_NUMBER}\n", encoding="utf-8")
    with pytest.raises(PiiDecryptError, match="not a sealed file"):
        SealedFile(path, _cipher()).open()


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "f"
    with pytest.raises(RuntimeError), SealedFile(path, _cipher()).create() as writer:
        writer.write(b"a" * (CHUNK_BYTES + 1))
        raise RuntimeError("the upload broke off")
    assert not path.exists()


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        SealedFile(path, _cipher()).create()
    assert path.read_bytes() == b"someone else's"
