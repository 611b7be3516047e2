"""Every row-level reason code of feed validation (pure: the validator without a running service)."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from pypinyin import Style, lazy_pinyin

from baoxue.orgs.directory import default_directory
from baoxue.pii import address_codes
from baoxue.pii.citizen_id import check_character
from baoxue.pii.crypto import BlindIndex, FieldCipher
from baoxue.synth.names import name_bank
from registry.feeds.reasons import REASONS
from registry.feeds.validation import RAW_ROW_AAD, RowValidator, _holds_phrase, name_pinyin
from tests.registry.people import LI, WANG

CIPHER = FieldCipher({"k1": b"0123456789abcdef"}, "k1")
BLIND = BlindIndex(b"blind-index-test-key-32-bytes!!!")
CUTOFF = dt.date(2026, 8, 31)
FIELDS = (
    "name",
    "id_number",
    "sex",
    "birth_date",
    "hukou_address",
    "current_address",
    "guardian_name",
    "guardian_phone",
    "categories",
    "disability_type",
    "disability_grade",
)


def cells(kid=WANG, **over):
    base = dict(zip(FIELDS, kid.row().split(","), strict=True))
    return base | over


def check(department="police", **over):
    v = RowValidator(department, CUTOFF, default_directory(), CIPHER, BLIND, "b1")
    out = v.validate(1, cells(**over))
    return out, out["reasons"].split(",") if out["reasons"] else []


def test_a_clean_row_is_accepted_without_reasons_and_keeps_no_plain_id():
    out, reasons = check()
    assert out["outcome"] == "accepted" and reasons == []
    assert out["hukou_town"] == "370406101" and out["hukou_village"] == "370406101201"
    assert out["hukou_school_district"] == "37040610101"
    assert out["categories"] == "resident"
    assert WANG.id not in str(out) and out["id_blind"] == BLIND.of(WANG.id)
    assert out.get("raw_cipher") is None


@pytest.mark.parametrize(
    ("over", "code", "outcome"),
    [
        ({"id_number": ""}, "id_missing", "accepted"),
        ({"id_number": "370406160502061"}, "id_legacy_15_digit", "accepted"),
        ({"id_number": "3704062016050206"}, "id_bad_length", "accepted"),
        ({"id_number": "37040620160502A61X"}, "id_bad_characters", "accepted"),
        (
            {"id_number": WANG.id[:-1] + ("0" if WANG.id[-1] != "0" else "1")},
            "id_bad_check_character",
            "accepted",
        ),
        ({"birth_date": "2016-05-03"}, "id_birth_date_mismatch", "accepted"),
        ({"sex": "女"}, "id_sex_mismatch", "accepted"),
        ({"name": ""}, "name_missing", "rejected"),
        ({"name": "王小明3"}, "name_invalid", "rejected"),
        ({"sex": "x"}, "sex_invalid", "rejected"),
        ({"birth_date": "2016-02-30"}, "birth_date_invalid", "rejected"),
        ({"hukou_address": ""}, "hukou_address_missing", "rejected"),
        ({"hukou_address": "江苏省苏州市昆山市某路1号"}, "address_unmatched", "accepted"),
        ({"hukou_address": "山亭区店子镇不存在村"}, "address_village_unmatched", "accepted"),
        ({"guardian_phone": "12345"}, "phone_invalid", "accepted"),
        ({"categories": "外星人"}, "category_unknown", "accepted"),
        ({"categories": "低保"}, "category_not_for_department", "accepted"),
        ({"categories": ""}, "category_missing", "accepted"),
        ({"current_address": "长" * 201}, "field_too_long", "rejected"),
        ({"guardian_name": '=HYPERLINK("http://x")'}, "cell_formula", "rejected"),
    ],
)
def test_reason_codes(over, code, outcome):
    out, reasons = check(**over)
    assert code in reasons
    assert out["outcome"] == outcome
    assert out["raw_cipher"]  # the original row is kept (encrypted) for the error report


@pytest.mark.parametrize(
    "cell",
    [
        3.70406201605021e17,  # Excel's number for WANG's ID: 15 significant digits, the rest lost
        float(WANG.id),  # the nearest double: 370406201605021184
        int(
            WANG.id
        ),  # an exact integer, but a number all the same: whoever opens the file in Excel rounds it
        "3.70406E+17",  # a CSV saved from Excel with the column as a number
        "3.70406201605021E+17",
    ],
)
def test_an_id_number_stored_as_a_number_is_rejected_with_its_own_reason(cell):
    out, reasons = check(id_number=cell)
    assert reasons == ["id_number_stored_as_number"] and out["outcome"] == "rejected"
    assert out.get("id_blind") is None and out.get("id_cipher") is None  # no ID number kept from it
    assert REASONS["id_number_stored_as_number"][0] == "error"
    assert (
        "text" in REASONS["id_number_stored_as_number"][1]
        and "文本" in REASONS["id_number_stored_as_number"][2]
    )


def test_an_id_number_a_number_holds_exactly_is_read_as_text():
    legacy = "370406160502061"  # 15 digits: a double holds every such integer exactly
    for cell in (float(legacy), int(legacy)):
        out, reasons = check(id_number=cell)
        assert reasons == ["id_legacy_15_digit"] and out["outcome"] == "accepted"
    assert "id_number_stored_as_number" not in check(id_number="3704062016")[1]


def test_id_unusable_needs_sex_and_birth_date():
    _, reasons = check(id_number="", sex="", birth_date="")
    assert {"id_missing", "sex_missing", "birth_date_missing"} <= set(reasons)


@pytest.mark.parametrize(
    ("address_code", "reason"),
    [("000406", "id_address_code_unknown"), ("370421", "id_address_code_not_in_use")],  # 滕县 until 1987
)
def test_an_address_code_not_valid_in_the_birth_year_is_kept_for_review(address_code, reason):
    body = address_code + WANG.id[6:17]
    out, reasons = check(id_number=body + check_character(body))
    assert reason in reasons and REASONS[reason][0] == "review"
    assert out["outcome"] == "accepted"


def test_school_age_window_on_the_cutoff():
    too_old = WANG.but(birth=dt.date(2011, 8, 31), seq=20)
    out, reasons = check(**cells(too_old))
    assert "age_out_of_window" in reasons and out["outcome"] == "rejected"
    just_in = WANG.but(birth=dt.date(2011, 9, 1), seq=21)
    assert "age_out_of_window" not in check(**cells(just_in))[1]
    too_young = WANG.but(birth=dt.date(2020, 9, 1), seq=22)
    assert "age_out_of_window" in check(**cells(too_young))[1]


def test_normalisation_full_width_lower_x_spaces_and_name_spaces():
    kid = next(k for s in range(10, 100) if (k := LI.but(seq=s)).id.endswith("X"))
    messy = (
        " ".join(kid.id[:6])
        + kid.id[6:-1].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        + "x"
    )
    out, reasons = check(**(cells(kid) | {"id_number": messy, "name": "李 梅"}))
    assert reasons == [] and out["id_blind"] == BLIND.of(kid.id) and out["name"] == "李梅"


def test_dates_in_department_styles_and_disability_labels():
    for text in ("2016/5/2", "20160502", "2016.5.2", "2016年5月2日"):
        assert check(birth_date=text)[1] == []
    out, reasons = check("dpf", categories="残疾", disability_type="智力残疾", disability_grade="二级")
    assert reasons == [] and out["disability_type"] == "intellectual" and out["disability_grade"] == "2"
    assert "disability_type_unknown" in check("dpf", categories="残疾", disability_type="x")[1]
    assert "disability_grade_invalid" in check("dpf", categories="残疾", disability_grade="五级")[1]


def test_duplicates_inside_a_batch_by_id_and_without_id():
    v = RowValidator("police", CUTOFF, default_directory(), CIPHER, BLIND, "b1")
    assert v.validate(1, cells())["outcome"] == "accepted"
    second = v.validate(2, cells(name="王晓明"))
    assert "duplicate_in_batch" in second["reasons"] and second["outcome"] == "rejected"
    no_id = cells(LI, id_number="")
    assert v.validate(3, no_id)["outcome"] == "accepted"
    assert "duplicate_in_batch" in v.validate(4, no_id)["reasons"]


def test_only_accepted_rows_count_as_earlier_rows_of_a_batch():
    """A rejected row does not make the same person's corrected row later in the batch a duplicate (bad
    rows never stop good rows); an accepted one does."""
    v = RowValidator("police", CUTOFF, default_directory(), CIPHER, BLIND, "b1")
    first = v.validate(1, cells(name="=王小明"))
    assert first["outcome"] == "rejected" and "duplicate_in_batch" not in first["reasons"]
    corrected = v.validate(2, cells())
    assert (corrected["outcome"], corrected["reasons"]) == ("accepted", "")
    assert "duplicate_in_batch" in v.validate(3, cells())["reasons"]
    no_id = cells(LI, id_number="")
    assert v.validate(4, no_id | {"hukou_address": ""})["outcome"] == "rejected"
    assert v.validate(5, no_id)["outcome"] == "accepted"
    assert "duplicate_in_batch" in v.validate(6, no_id)["reasons"]


def test_malformed_row_and_every_code_has_messages():
    v = RowValidator("police", CUTOFF, default_directory(), CIPHER, BLIND, "b1")
    assert "row_malformed" in v.validate(1, cells(), malformed=True)["reasons"]
    for code, (sev, en, zh) in REASONS.items():
        assert sev in ("error", "warning", "review") and en and zh, code
    # The test people's ID numbers are real GB 11643 numbers: WANG's, worked out by hand (weights 7 9 10 5 8 4
    # 2 1 6 3 7 9 10 5 8 4 2, sum 237, mod 11 = 6 → check character 6).
    assert WANG.id == "370406201605021176"


async def test_the_registry_reads_the_division_codes_at_start_up(start_service):
    address_codes._timeline.cache_clear()
    address_codes._provinces.cache_clear()
    await start_service("registry")
    assert address_codes._provinces.cache_info().currsize == 1  # loaded before any number was checked


def test_name_pinyin_is_pypinyins_reading_of_the_whole_name():
    # name_pinyin reads most names character by character; it must give exactly what pypinyin gives
    # for the whole name, also where a name holds a word of pypinyin's phrase dictionary (read as a word).
    bank, rng = name_bank(), random.Random(7)
    names = {bank.surname(rng) + bank.given(rng, rng.choice("MF"), rng.random() < 0.3) for _ in range(20_000)}
    names |= {
        "欧阳明月",
        "司马相如",
        "王小明",
        "单雨轩",
        "曾子涵",
        "阿依古丽·买买提",
        "Li Wei",
        "张伟\n",
        "",
        "〇",
    }
    worded = [n for n in names if _holds_phrase(n)]
    assert len(worded) > 50  # both paths are exercised
    name_pinyin.cache_clear()
    for name in names:
        assert name_pinyin(name) == " ".join(lazy_pinyin(name, style=Style.NORMAL, errors="ignore")), name


@pytest.mark.parametrize(
    ("cell", "code"),
    [("渠庄村\x005号", "cell_control_character"), ("渠庄村\ud8005号", "cell_invalid_text")],
)
def test_a_cell_no_store_would_take_rejects_its_row_and_the_kept_copy_is_storable(cell, code):
    out, reasons = check(current_address=cell)
    assert code in reasons and out["outcome"] == "rejected"
    assert out["current_address"] == "渠庄村\ufffd5号"  # what is staged is storable
    kept = json.loads(CIPHER.decrypt(out["raw_cipher"], associated_data=RAW_ROW_AAD))
    assert kept["current_address"] == "渠庄村\ufffd5号" and kept["name"] == WANG.name
