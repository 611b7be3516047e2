"""Citizen ID numbers (公民身份号码, GB 11643-1999) and student numbers (学籍号).

An ID number is 6-digit address code + 8-digit birth date + 3-digit sequence (odd = male) + a check
character (ISO 7064 MOD 11-2). Foreign permanent residence ID numbers start with 9 and use the same check.

Everything here works on personal data of minors: reason codes and exception messages never contain the
number itself, so they can be logged, returned in API errors and stored in review queues.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Literal

from baoxue.pii.address_codes import FOREIGN_PERMANENT_RESIDENT_PREFIX, address_code_status

Sex = Literal["M", "F"]
StudentNumberKind = Literal["G", "J", "L"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"

# Characters that creep in from spreadsheets, PDFs and mobile keyboards. NFKC has already turned the
# full-width forms (＂－＂, ideographic space) into ASCII before these are removed.
_SEPARATORS = frozenset(
    " \t\r\n\v\f-"
    "\u00a0\u2010\u2011\u2012\u2013\u2014\u2212"  # no-break space, hyphens and dashes, minus sign
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width space / (non-)joiner, word joiner, BOM
)


_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS = re.compile(r"[0-9]+")
_ALPHANUMERIC = re.compile(r"[0-9A-Z]+")

# China has had no daylight saving time since 1991, so a fixed offset is exact.
_CHINA_STANDARD_TIME = timezone(timedelta(hours=8))


class IdReason(StrEnum):
    """Stable reason codes for ID-number checks (safe to log, store and return to clients)."""

    MISSING = "id_missing"
    LEGACY_15_DIGIT = "id_legacy_15_digit"
    BAD_LENGTH = "id_bad_length"
    BAD_CHARACTERS = "id_bad_characters"
    BAD_CHECK_CHARACTER = "id_bad_check_character"
    BAD_BIRTH_DATE = "id_bad_birth_date"
    BIRTH_DATE_MISMATCH = "id_birth_date_mismatch"
    SEX_MISMATCH = "id_sex_mismatch"
    # Address codes are warnings for review, never rejections (late registration, re-coded counties).
    ADDRESS_CODE_UNKNOWN = "id_address_code_unknown"  # in no year's list of division codes
    ADDRESS_CODE_NOT_IN_USE = "id_address_code_not_in_use"  # a division code, but not in the birth year


_ADDRESS_CODE_WARNINGS = {
    "unknown": IdReason.ADDRESS_CODE_UNKNOWN,
    "not_in_use": IdReason.ADDRESS_CODE_NOT_IN_USE,
}


class StudentNumberReason(StrEnum):
    """Stable reason codes for student-number (学籍号) checks."""

    MISSING = "student_number_missing"
    BAD_PREFIX = "student_number_bad_prefix"
    BAD_LENGTH = "student_number_bad_length"
    BAD_CHARACTERS = "student_number_bad_characters"
    BAD_CHECK_CHARACTER = "student_number_bad_check_character"
    BAD_BIRTH_DATE = "student_number_bad_birth_date"


@dataclass(frozen=True)
class IdNumberFacts:
    """What a well-formed ID number says about its holder."""

    # Kept out of repr so that logging or printing the facts does not leak the number or birth date.
    id_number: str = field(repr=False)  # normalised
    address_code: str
    birth_date: date = field(repr=False)
    sex: Sex
    is_foreign_permanent_resident: bool


@dataclass(frozen=True)
class IdCheck:
    """Outcome of `parse_id_number`.

    `facts` is present whenever the number itself is well formed (length, characters, check character,
    birth date), even if it disagrees with the record (`id_birth_date_mismatch`, `id_sex_mismatch`),
    so a reviewer can see what the number says.
    """

    facts: IdNumberFacts | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the number is valid and agrees with the expected birth date and sex."""
        return self.facts is not None and not self.errors


def normalise_id_number(raw: str) -> str:
    """Return `raw` in canonical form: ASCII digits, upper-case letters, no separators.

    Full-width characters are folded by NFKC; spaces, tabs, hyphens, dashes and zero-width characters are
    removed; a lower-case check character `x` becomes `X`. Nothing is validated.
    """
    if raw.isascii() and raw.isalnum():  # the usual cell: nothing to fold or remove
        return raw.upper()
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in folded if ch not in _SEPARATORS and not ch.isspace()).upper()


def check_character(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character ('0'–'9' or 'X') for 17 ASCII digits.

    Raises ValueError when `first17` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _DIGITS.fullmatch(first17):
        raise ValueError("a check character needs exactly 17 digits")
    total = sum(map(operator.mul, map(int, first17), _WEIGHTS))
    return _CHECK_CHARACTERS[total % 11]


def parse_id_number(
    raw: str | None,
    *,
    expected_birth_date: date | None = None,
    expected_sex: Sex | None = None,
    today: date | None = None,
) -> IdCheck:
    """Normalise and validate an 18-character ID number, optionally against the record's birth date/sex.

    Never raises for bad input: problems come back as `IdReason` codes in `errors`; an address code
    that was no division code in the birth year (`baoxue.pii.address_codes`) is only a warning
    (re-coded counties, late registration).
    `today` (default: today in China) bounds the birth date.
    """
    id_number = normalise_id_number(raw or "")
    if not id_number:
        return IdCheck(facts=None, errors=(IdReason.MISSING,))
    if len(id_number) == 15 and _DIGITS.fullmatch(id_number):
        return IdCheck(facts=None, errors=(IdReason.LEGACY_15_DIGIT,))
    if len(id_number) != 18:
        return IdCheck(facts=None, errors=(IdReason.BAD_LENGTH,))
    if not _ID_SHAPE.fullmatch(id_number):
        return IdCheck(facts=None, errors=(IdReason.BAD_CHARACTERS,))

    errors: list[str] = []
    if check_character(id_number[:17]) != id_number[17]:
        errors.append(IdReason.BAD_CHECK_CHARACTER)
    birth_date = _birth_date(id_number[6:14], today=today or _today_in_china())
    if birth_date is None:
        errors.append(IdReason.BAD_BIRTH_DATE)
    if errors or birth_date is None:
        return IdCheck(facts=None, errors=tuple(errors))

    address_code = id_number[:6]
    facts = IdNumberFacts(
        id_number=id_number,
        address_code=address_code,
        birth_date=birth_date,
        sex="M" if int(id_number[16]) % 2 == 1 else "F",
        is_foreign_permanent_resident=address_code.startswith(FOREIGN_PERMANENT_RESIDENT_PREFIX),
    )
    if expected_birth_date is not None and expected_birth_date != facts.birth_date:
        errors.append(IdReason.BIRTH_DATE_MISMATCH)
    if expected_sex is not None and expected_sex != facts.sex:
        errors.append(IdReason.SEX_MISMATCH)
    status = address_code_status(address_code, birth_date.year)
    warnings: tuple[str, ...] = () if status == "in_use" else (_ADDRESS_CODE_WARNINGS[status],)
    return IdCheck(facts=facts, errors=tuple(errors), warnings=warnings)


def is_valid_id_number(raw: str | None) -> bool:
    """True when `raw`, once normalised, is a well-formed 18-character ID number (warnings allowed)."""
    return parse_id_number(raw).ok


def student_number_kind(raw: str | None) -> StudentNumberKind | None:
    """Return the kind of a student number from its prefix: 'G' (ID-based), 'J' (built like an ID),
    'L' (temporary), or None when the prefix is none of these. Only the prefix is looked at."""
    prefix = normalise_id_number(raw or "")[:1]
    if prefix == "G":
        return "G"
    if prefix == "J":
        return "J"
    if prefix == "L":
        return "L"
    return None


def validate_student_number(raw: str | None) -> tuple[str, ...]:
    """Validate a student number (学籍号); an empty tuple means valid, otherwise `StudentNumberReason` codes.

    - `G` + a valid 18-character ID number (check character and birth date are checked);
    - `J` + 18 characters built like an ID number: 17 digits and a valid MOD 11-2 check character;
    - `L` + 10–20 letters or digits: a temporary number that carries no check character.
    """
    number = normalise_id_number(raw or "")
    if not number:
        return (StudentNumberReason.MISSING,)
    kind = student_number_kind(number)
    body = number[1:]
    if kind is None:
        return (StudentNumberReason.BAD_PREFIX,)
    if kind == "L":
        if not 10 <= len(body) <= 20:
            return (StudentNumberReason.BAD_LENGTH,)
        return () if _ALPHANUMERIC.fullmatch(body) else (StudentNumberReason.BAD_CHARACTERS,)
    if len(body) != 18:
        return (StudentNumberReason.BAD_LENGTH,)
    if not _ID_SHAPE.fullmatch(body):
        return (StudentNumberReason.BAD_CHARACTERS,)
    if kind == "J":
        ok = check_character(body[:17]) == body[17]
        return () if ok else (StudentNumberReason.BAD_CHECK_CHARACTER,)
    id_errors = parse_id_number(body).errors
    reasons: list[str] = []
    if IdReason.BAD_CHECK_CHARACTER in id_errors:
        reasons.append(StudentNumberReason.BAD_CHECK_CHARACTER)
    if IdReason.BAD_BIRTH_DATE in id_errors:
        reasons.append(StudentNumberReason.BAD_BIRTH_DATE)
    return tuple(reasons)


def age_on(birth_date: date, on: date) -> int:
    """Age in full years (周岁) on the date `on`; the birthday itself counts as reached.

    Someone born on 29 February reaches each new age on 28 February in common years: a period measured
    in years ends on the last day of the month when the month has no corresponding day (民法典 第二百零二条).
    Raises ValueError when `on` is before `birth_date`.
    """
    if on < birth_date:
        raise ValueError("the date is before the birth date")
    years = on.year - birth_date.year
    return years if on >= _birthday_in(birth_date, on.year) else years - 1


def _birthday_in(birth_date: date, year: int) -> date:
    if birth_date.month == 2 and birth_date.day == 29 and not _is_leap_year(year):
        return date(year, 2, 28)
    return birth_date.replace(year=year)


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _birth_date(yyyymmdd: str, *, today: date) -> date | None:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None
    return born if born <= today else None


def _today_in_china() -> date:
    return datetime.now(_CHINA_STANDARD_TIME).date()
