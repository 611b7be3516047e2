"""A feed submission waits in the spool folder until its batch is final: sealed (no name or ID number in
the file's bytes) and readable by the service's user only."""

from __future__ import annotations

import stat

from baoxue.pii import FieldCipher
from baoxue.pii.files import SealedFile
from registry.feeds.parsing import inspect_feed, read_rows
from registry.feeds.uploads import save_stream

ID_NUMBER = "370406201605020659"


async def test_a_spooled_submission_is_sealed_and_readable_by_the_service_user_only(tmp_path):
    cipher = FieldCipher({"k1": bytes(range(16))}, "k1")
    body = f"姓名,身份证号,性别,出生日期,户籍地址\n王小明,{ID_NUMBER},男,2016-05-02,山亭区店子镇前庄村12号\n"

    async def chunks():
        for line in body.encode("gb18030").splitlines(keepends=True):
            yield line

    directory = tmp_path / "registry-feeds"
    directory.mkdir(mode=0o755)  # an operator's folder with the default mode is tightened
    saved = await save_stream(chunks(), directory, "csv", max_bytes=1 << 20, cipher=cipher)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    raw = saved.path.read_bytes()
    assert ID_NUMBER.encode() not in raw
    assert "王小明".encode("gb18030") not in raw and "王小明".encode() not in raw
    assert saved.size == len(body.encode("gb18030"))

    source = SealedFile(saved.path, cipher)  # what the job reads: the encoding is still detected
    shape = inspect_feed(source, "csv", max_rows=10)
    assert (shape.encoding, shape.rows) == ("gb18030", 1)
    [(number, cells, malformed)] = list(read_rows(source, "csv", shape.encoding))
    assert (number, cells["name"], cells["id_number"], malformed) == (1, "王小明", ID_NUMBER, False)
