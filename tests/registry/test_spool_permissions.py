"""A feed submission waits in the spool folder in plain text until its batch is final: only the
service's user may read it."""

from __future__ import annotations

import stat

from registry.feeds.uploads import save_stream


async def test_a_spooled_submission_is_readable_by_the_service_user_only(tmp_path):
    async def chunks():
        yield "姓名,身份证号\n".encode()
        yield "王小明,370406201605020659\n".encode()

    directory = tmp_path / "registry-feeds"
    directory.mkdir(mode=0o755)  # an operator's folder with the default mode is tightened
    saved = await save_stream(chunks(), directory, "csv", max_bytes=1 << 20)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert saved.path.read_text(encoding="utf-8").endswith("370406201605020659\n")
