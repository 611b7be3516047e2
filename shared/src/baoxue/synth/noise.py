"""Clerical noise as real department spreadsheets carry it. Pure functions of their inputs and ``rng``."""

from __future__ import annotations

import random
from datetime import date, timedelta

MISSING_ID_VALUES = ("", "", "", "无", "暂无", "/", "-")
"""What clerks put in the ID column when they have no number."""

_FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def typo_digit(id_number: str, rng: random.Random) -> str:
    """One digit among the first 17 replaced by a different digit."""
    i = rng.randrange(17)
    wrong = str((int(id_number[i]) + rng.randrange(1, 10)) % 10)
    return id_number[:i] + wrong + id_number[i + 1 :]


def transpose_digits(id_number: str, rng: random.Random) -> str:
    """Two neighbouring, different characters swapped; a typo instead if all neighbours are equal."""
    starts = [i for i in range(17) if id_number[i] != id_number[i + 1]]
    if not starts:
        return typo_digit(id_number, rng)
    i = rng.choice(starts)
    return id_number[:i] + id_number[i + 1] + id_number[i] + id_number[i + 2 :]


def full_width(text: str) -> str:
    """Digits and X turned into their full-width forms (０１２…Ｘ), as typed with a Chinese IME."""
    return text.translate(_FULL_WIDTH)


def spaced_id(id_number: str, rng: random.Random) -> str:
    """The ID with spaces in the 6-8-4 grouping (or one stray space), as pasted from a form."""
    if rng.random() < 0.5:
        return f"{id_number[:6]} {id_number[6:14]} {id_number[14:]}"
    i = rng.randrange(1, 18)
    return id_number[:i] + " " + id_number[i:]


def wrong_birth_date(born: date) -> date:
    """Day and month swapped when that gives another valid date, otherwise the next day."""
    if born.day <= 12 and born.day != born.month:
        return date(born.year, born.day, born.month)
    return born + timedelta(days=1)


def format_date(born: date, style: str) -> str:
    """``iso`` 2015-03-07, ``slash`` 2015/3/7, ``compact`` 20150307, ``dot`` 2015.3.7."""
    if style == "iso":
        return born.isoformat()
    if style == "slash":
        return f"{born.year}/{born.month}/{born.day}"
    if style == "compact":
        return f"{born.year:04d}{born.month:02d}{born.day:02d}"
    return f"{born.year}.{born.month}.{born.day}"


def name_with_whitespace(name: str, surname_len: int, rng: random.Random) -> str:
    """A space between surname and given name, or a trailing (full-width) space."""
    choice = rng.random()
    if choice < 0.5:
        return name[:surname_len] + " " + name[surname_len:]
    if choice < 0.8:
        return name + " "
    return name + "\u3000"


def formatted_phone(phone: str, rng: random.Random) -> str:
    """The phone written 3-4-4 with dashes or spaces."""
    sep = "-" if rng.random() < 0.5 else " "
    return f"{phone[:3]}{sep}{phone[3:7]}{sep}{phone[7:]}"
