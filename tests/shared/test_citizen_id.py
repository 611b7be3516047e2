"""Citizen ID numbers (GB 11643-1999), student numbers and age in full years."""

from datetime import date

import pytest

from baoxue.pii.citizen_id import (
    IdReason,
    StudentNumberReason,
    age_on,
    check_character,
    is_valid_id_number,
    normalise_id_number,
    parse_id_number,
    student_number_kind,
    validate_student_number,
)

# The two worked examples printed in GB 11643-1999 itself.
STANDARD_FEMALE = "11010519491231002X"  # 北京市朝阳区, 1949-12-31, sequence 002 (even → female)
STANDARD_MALE = "440524188001010014"  # 广东省汕头市潮阳县, 1880-01-01, sequence 001 (odd → male)


def synthetic_id(address_code: str, birth: str, sequence: str) -> str:
    first17 = address_code + birth + sequence
    return first17 + check_character(first17)


CHILD = synthetic_id("370406", "20190815", "123")  # male, born 2019-08-15


def test_check_character_matches_the_standards_examples():
    assert check_character(STANDARD_FEMALE[:17]) == "X"
    assert check_character(STANDARD_MALE[:17]) == "4"


@pytest.mark.parametrize(
    "bad", ["", "1234", "1101051949123100X", "11010519491231002X", "１１０１０５１９４９１２３１００２"]
)
def test_check_character_refuses_anything_but_17_ascii_digits_without_echoing_it(bad):
    with pytest.raises(ValueError) as caught:
        check_character(bad)
    assert "1101" not in str(caught.value) and "１" not in str(caught.value)


def test_every_single_digit_substitution_is_detected():
    for position in range(17):
        for digit in "0123456789":
            if digit == CHILD[position]:
                continue
            mutated = CHILD[:position] + digit + CHILD[position + 1 :]
            assert check_character(mutated[:17]) != mutated[17]


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",
        " 110105 19491231 002X ",
        "110105-19491231-002X",
        "\t110105\u200b19491231\ufeff002x\n",
        "１１０１０５１９４９１２３１００２ｘ",  # full-width, as typed on a Chinese IME
        "110105\u300019491231\u3000002X",  # ideographic spaces
        "110105－19491231－002X",  # full-width hyphen-minus
    ],
)
def test_normalise_folds_the_usual_input_noise(raw):
    assert normalise_id_number(raw) == STANDARD_FEMALE


def test_a_valid_number_yields_its_facts():
    check = parse_id_number(CHILD.lower())
    assert check.ok
    assert check.errors == () and check.warnings == ()
    assert check.facts is not None
    assert check.facts.id_number == CHILD
    assert check.facts.address_code == "370406"
    assert check.facts.birth_date == date(2019, 8, 15)
    assert check.facts.sex == "M"
    assert not check.facts.is_foreign_permanent_resident


def test_sex_comes_from_the_parity_of_the_sequence_number():
    female = parse_id_number(STANDARD_FEMALE).facts
    male = parse_id_number(STANDARD_MALE).facts
    assert female is not None and female.sex == "F"
    assert male is not None and male.sex == "M"


def test_foreign_permanent_residence_number_uses_the_same_check():
    number = synthetic_id("937156", "20150301", "042")
    check = parse_id_number(number)
    assert check.ok and check.warnings == ()
    assert check.facts is not None and check.facts.is_foreign_permanent_resident


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, IdReason.MISSING),
        ("", IdReason.MISSING),
        ("  \u200b ", IdReason.MISSING),
        ("370406190815123", IdReason.LEGACY_15_DIGIT),
        ("3704062019081512", IdReason.BAD_LENGTH),
        (CHILD + "1", IdReason.BAD_LENGTH),
        ("37040620190815X234", IdReason.BAD_CHARACTERS),
        ("3704062019O8151234", IdReason.BAD_CHARACTERS),  # letter O instead of zero
    ],
)
def test_structural_problems_are_reported_without_facts(raw, reason):
    check = parse_id_number(raw)
    assert check.errors == (reason,)
    assert check.facts is None and not check.ok


def test_wrong_check_character():
    wrong = CHILD[:17] + ("0" if CHILD[17] != "0" else "1")
    check = parse_id_number(wrong)
    assert check.errors == (IdReason.BAD_CHECK_CHARACTER,)
    assert check.facts is None


@pytest.mark.parametrize("birth", ["20190230", "20190229", "20191301", "20190800", "00000101"])
def test_birth_dates_that_do_not_exist(birth):
    assert parse_id_number(synthetic_id("370406", birth, "123")).errors == (IdReason.BAD_BIRTH_DATE,)


def test_birth_date_in_the_future():
    number = synthetic_id("370406", "20300101", "123")
    assert parse_id_number(number, today=date(2029, 12, 31)).errors == (IdReason.BAD_BIRTH_DATE,)
    assert parse_id_number(number, today=date(2030, 1, 1)).ok


def test_bad_check_character_and_bad_birth_date_are_both_reported():
    number = synthetic_id("370406", "20190230", "123")
    number = number[:17] + ("0" if number[17] != "0" else "1")
    assert set(parse_id_number(number).errors) == {IdReason.BAD_CHECK_CHARACTER, IdReason.BAD_BIRTH_DATE}


def test_record_mismatches_are_errors_but_keep_the_facts():
    check = parse_id_number(CHILD, expected_birth_date=date(2019, 8, 16), expected_sex="F")
    assert check.errors == (IdReason.BIRTH_DATE_MISMATCH, IdReason.SEX_MISMATCH)
    assert check.facts is not None and check.facts.birth_date == date(2019, 8, 15)
    assert not check.ok
    assert parse_id_number(CHILD, expected_birth_date=date(2019, 8, 15), expected_sex="M").ok


@pytest.mark.parametrize(
    "address_code", ["000000", "200101", "390101", "721234", "840000", "370422", "999840"]
)
def test_an_address_code_in_no_list_is_a_warning_not_an_error(address_code):
    check = parse_id_number(synthetic_id(address_code, "20190815", "123"))
    assert check.ok
    assert check.warnings == (IdReason.ADDRESS_CODE_UNKNOWN,)


@pytest.mark.parametrize(
    ("address_code", "birth"),
    [
        ("110103", "20150101"),  # 崇文区, merged into 东城区 after 2009
        ("370421", "20190815"),  # 滕县, 滕州市 (370481) since 1988
        ("370812", "20110301"),  # 兖州区, created 2013 (before: 兖州市 370882)
    ],
)
def test_an_address_code_of_other_years_is_a_warning_not_an_error(address_code, birth):
    check = parse_id_number(synthetic_id(address_code, birth, "123"))
    assert check.ok and check.facts is not None
    assert check.warnings == (IdReason.ADDRESS_CODE_NOT_IN_USE,)


@pytest.mark.parametrize(
    ("address_code", "birth"),
    [
        ("370406", "20190815"),  # 山亭区
        ("370406", "19800101"),  # the same code was 齐村区 until 1982
        ("110103", "20091231"),  # 崇文区 in its last year
        ("370812", "20130101"),  # 兖州区 in its first year
        ("110105", "20190815"),
        ("650102", "20190815"),
        ("110120", "19820601"),  # a prefecture's "市区" code that the yearly lists omit
        ("710000", "20190815"),  # Taiwan, Hong Kong and Macao: no year applies
        ("810000", "20190815"),
        ("820000", "20190815"),
        ("830000", "20190815"),
        ("911840", "20190815"),  # a foreign permanent resident's number issued in Beijing (11)
    ],
)
def test_an_address_code_in_use_in_the_birth_year_gives_no_warning(address_code, birth):
    assert parse_id_number(synthetic_id(address_code, birth, "123")).warnings == ()


def test_reason_codes_are_stable_strings():
    assert IdReason.BAD_CHECK_CHARACTER == "id_bad_check_character"
    assert IdReason.ADDRESS_CODE_UNKNOWN == "id_address_code_unknown"
    assert IdReason.ADDRESS_CODE_NOT_IN_USE == "id_address_code_not_in_use"
    assert parse_id_number("").errors == ("id_missing",)


def test_the_number_stays_out_of_repr():
    shown = repr(parse_id_number(CHILD))
    assert CHILD not in shown
    assert "2019" not in shown


def test_is_valid_id_number():
    assert is_valid_id_number(STANDARD_FEMALE.lower())
    assert is_valid_id_number(synthetic_id("000000", "20190815", "123"))  # warning only
    assert not is_valid_id_number(CHILD[:17] + ("0" if CHILD[17] != "0" else "1"))
    assert not is_valid_id_number(None)


# --- Student numbers ------------------------------------------------------------------------------------


def test_student_number_kind_reads_the_prefix():
    assert student_number_kind("G" + CHILD) == "G"
    assert student_number_kind("j" + CHILD) == "J"
    assert student_number_kind("Ｌ1234567890") == "L"
    assert student_number_kind(CHILD) is None
    assert student_number_kind("") is None
    assert student_number_kind(None) is None


def test_valid_student_numbers():
    assert validate_student_number("G" + CHILD) == ()
    assert validate_student_number("g " + CHILD.lower()) == ()
    assert (
        validate_student_number("J" + synthetic_id("370406", "99999999", "001")) == ()
    )  # no birth date check
    assert validate_student_number("L" + "1" * 10) == ()
    assert validate_student_number("L" + "AB12" * 5) == ()


@pytest.mark.parametrize(
    ("raw", "reasons"),
    [
        ("", (StudentNumberReason.MISSING,)),
        (CHILD, (StudentNumberReason.BAD_PREFIX,)),
        ("X" + CHILD, (StudentNumberReason.BAD_PREFIX,)),
        ("G" + CHILD[:17], (StudentNumberReason.BAD_LENGTH,)),
        ("G" + CHILD[:17] + ("0" if CHILD[17] != "0" else "1"), (StudentNumberReason.BAD_CHECK_CHARACTER,)),
        ("G" + synthetic_id("370406", "20190230", "123"), (StudentNumberReason.BAD_BIRTH_DATE,)),
        ("GA" + CHILD[1:], (StudentNumberReason.BAD_CHARACTERS,)),
        ("J" + CHILD + "0", (StudentNumberReason.BAD_LENGTH,)),
        ("J" + CHILD[:17] + ("0" if CHILD[17] != "0" else "1"), (StudentNumberReason.BAD_CHECK_CHARACTER,)),
        ("L" + "1" * 9, (StudentNumberReason.BAD_LENGTH,)),
        ("L" + "1" * 21, (StudentNumberReason.BAD_LENGTH,)),
        ("L12345#67890", (StudentNumberReason.BAD_CHARACTERS,)),
        ("L12345学67890", (StudentNumberReason.BAD_CHARACTERS,)),
    ],
)
def test_bad_student_numbers(raw, reasons):
    assert validate_student_number(raw) == reasons


def test_student_number_reason_codes_are_stable_strings():
    assert StudentNumberReason.BAD_PREFIX == "student_number_bad_prefix"
    assert StudentNumberReason.BAD_CHECK_CHARACTER == "student_number_bad_check_character"
    assert StudentNumberReason.BAD_LENGTH == "student_number_bad_length"


# --- Age in full years (周岁) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(2019, 8, 15), date(2019, 8, 15), 0),
        (date(2019, 8, 15), date(2025, 8, 14), 5),
        (date(2019, 8, 15), date(2025, 8, 15), 6),
        (date(2019, 8, 31), date(2025, 8, 31), 6),  # born on the usual cut-off date: of school age
        (date(2019, 9, 1), date(2025, 8, 31), 5),
        (date(2011, 12, 31), date(2026, 1, 1), 14),
    ],
)
def test_age_in_full_years(birth, on, age):
    assert age_on(birth, on) == age


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2017, 2, 27), 0),
        (date(2017, 2, 28), 1),  # common year: the birthday falls on the last day of February
        (date(2017, 3, 1), 1),
        (date(2020, 2, 28), 3),
        (date(2020, 2, 29), 4),
        (date(2022, 8, 31), 6),
    ],
)
def test_age_for_a_29_february_birthday(on, age):
    assert age_on(date(2016, 2, 29), on) == age


def test_age_before_birth_is_refused():
    with pytest.raises(ValueError):
        age_on(date(2019, 8, 15), date(2019, 8, 14))
