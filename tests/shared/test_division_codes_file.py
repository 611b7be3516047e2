"""The operator's division codes file (``BAOXUE_DIVISION_CODES_FILE``): codes created after the package's
lists end (2021) stop being ``unknown`` for the years it gives; a file that cannot be used stops the
service's start, naming the line, rather than leaving a mistyped code unknown in silence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from baoxue.pii import address_codes
from baoxue.pii.address_codes import DivisionCodesFileError, address_code_status, read_local_codes
from baoxue.pii.citizen_id import IdReason, check_character, parse_id_number
from baoxue.settings import ServiceSettings

NEW_COUNTY = "370490"  # in no year's list of the package: a county created after 2021, say
HEADER = "code,name,start_year,end_year\n"


@pytest.fixture(autouse=True)
def _package_codes_only() -> Iterator[None]:
    yield
    address_codes.load(None)  # the module's state is the process's: leave none of a test's additions


def _id(code: str, birth: str) -> str:
    first17 = code + birth + "123"
    return first17 + check_character(first17)


def _file(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "division-codes.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_listed_code_is_in_use_in_its_years_and_only_then(tmp_path: Path) -> None:
    assert address_code_status(NEW_COUNTY, 2023) == "unknown"
    address_codes.load(_file(tmp_path, HEADER + f"{NEW_COUNTY},新设县,2022,\n"))
    assert address_code_status(NEW_COUNTY, 2023) == "in_use"
    assert address_code_status(NEW_COUNTY, 2021) == "not_in_use"
    assert parse_id_number(_id(NEW_COUNTY, "20220301")).warnings == ()
    assert parse_id_number(_id(NEW_COUNTY, "20190301")).warnings == (IdReason.ADDRESS_CODE_NOT_IN_USE,)


def test_a_period_adds_to_the_packages_own_periods_of_a_code(tmp_path: Path) -> None:
    assert address_code_status("110103", 2011) == "not_in_use"  # 崇文区 until 2009
    address_codes.load(_file(tmp_path, "\ufeff" + HEADER + "110103,崇文区,2010,2011\n"))  # with a BOM
    assert address_code_status("110103", 2011) == "in_use"
    assert address_code_status("110103", 2005) == "in_use"  # the package's period still counts
    assert address_code_status("110103", 2015) == "not_in_use"


def test_loading_none_drops_the_additions(tmp_path: Path) -> None:
    address_codes.load(_file(tmp_path, HEADER + f"{NEW_COUNTY},新设县,2022,\n"))
    address_codes.load(None)
    assert address_code_status(NEW_COUNTY, 2023) == "unknown"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name,start\n370490,x,2022\n", "the header must be code,name,start_year,end_year"),
        (HEADER + "370490,ok,2022,\n37049,short,2022,\n", "line 3: '37049' is not a six-digit code"),
        (HEADER + "３７０４９０,full-width,2022,\n", "line 2: '３７０４９０' is not a six-digit code"),
        (HEADER + "370490,x,二〇二二,\n", "line 2: a year is not a number"),
        (HEADER + "370490,x,1900,\n", "line 2: a year outside 1949–2100"),
        (HEADER + "370490,x,2023,2022\n", "line 2: the start year is after the end year"),
    ],
)
def test_a_row_that_cannot_be_used_fails_the_file_naming_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DivisionCodesFileError, match=message):
        read_local_codes(_file(tmp_path, text))


def test_a_file_in_another_encoding_or_missing_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(DivisionCodesFileError, match="not a UTF-8 CSV file"):
        read_local_codes(_file(tmp_path, HEADER + "370490,新设县,2022,\n", encoding="gbk"))
    with pytest.raises(DivisionCodesFileError, match="cannot be read"):
        read_local_codes(tmp_path / "absent.csv")


def test_a_failed_load_keeps_the_additions_read_before(tmp_path: Path) -> None:
    address_codes.load(_file(tmp_path, HEADER + f"{NEW_COUNTY},新设县,2022,\n"))
    with pytest.raises(DivisionCodesFileError):
        address_codes.load(tmp_path / "absent.csv")
    assert address_code_status(NEW_COUNTY, 2023) == "in_use"


async def test_a_service_reads_the_file_at_start_up_and_will_not_start_on_a_bad_one(
    start_service, tmp_path: Path
) -> None:
    good = _file(tmp_path, HEADER + f"{NEW_COUNTY},新设县,2022,\n")
    await start_service("enrollment", division_codes_file=good)
    assert address_code_status(NEW_COUNTY, 2023) == "in_use"

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "3704,x,2022,\n", encoding="utf-8")
    with pytest.raises(DivisionCodesFileError, match="line 2"):
        await start_service("casework", division_codes_file=bad)


def test_the_setting_set_but_empty_means_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAOXUE_DIVISION_CODES_FILE", "")
    assert ServiceSettings().division_codes_file is None
    monkeypatch.setenv("BAOXUE_DIVISION_CODES_FILE", "/etc/baoxue/division-codes.csv")
    assert ServiceSettings().division_codes_file == Path("/etc/baoxue/division-codes.csv")
