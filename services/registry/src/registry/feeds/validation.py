"""Row validation: one department row (field name → cell text) in, one staged row with reason codes out.

Pure functions over strings, no I/O: the ingest job calls :meth:`RowValidator.validate` for every row.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT
from pypinyin.constants import RE_HANS as _HAN_RUN

from baoxue.entropy import uuid4_text
from baoxue.orgs.directory import OrgDirectory
from baoxue.pii.citizen_id import Sex, age_on, parse_id_number
from baoxue.pii.crypto import BlindIndex, FieldCipher
from baoxue.text import any_unstorable, storable, unstorable
from registry.feeds.columns import (
    CATEGORY_BY_LABEL,
    DEFAULT_CATEGORY,
    DEPARTMENT_CATEGORIES,
    DISABILITY_BY_LABEL,
    FIELDS,
    GRADE_BY_LABEL,
    MAX_CELL,
)
from registry.feeds.reasons import severity

RAW_ROW_AAD = b"registry.feed_row.raw"
ID_AAD = b"registry.child.id_number"
PHONE_AAD = b"registry.guardian_phone"
"""Associated data of every guardian-phone token (children, feed_rows, child_attributes): the merge
copies tokens between these tables in SQL, so they share one AAD."""

_NAME = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f·A-Za-z ]{1,30}")
_CJK_ONLY = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]+")
_DATE = re.compile(r"(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?")
_PHONE = re.compile(r"1\d{10}|0\d{9,11}|\d{7,8}")
_CATEGORY_SPLIT = re.compile(r"[、,，;；/\s]+")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE][+]?\d+")
_EXACT_BELOW = 10**15
"""A spreadsheet keeps a number to 15 significant digits (a double holds every integer up to 2**53 exactly):
a number below this is every digit the clerk typed; an 18-digit ID number given as a number is not."""
_CACHE_LIMIT = 100_000  # distinct values remembered per batch (addresses, phones' blind indexes)
_SEX: dict[str, Sex] = {
    "男": "M",
    "女": "F",
    "M": "M",
    "F": "F",
    "m": "M",
    "f": "F",
    "男性": "M",
    "女性": "F",
}
MIN_AGE, MAX_AGE = 6, 14
_UNSTORABLE_REASONS = {"control_character": "cell_control_character", "invalid_text": "cell_invalid_text"}


@lru_cache(maxsize=200_000)
def name_pinyin(name: str) -> str:
    """Tone-less pinyin of a name (homophones such as 张伟/张玮 give the same key).

    Exactly ``" ".join(lazy_pinyin(name, style=Style.NORMAL, errors="ignore"))``, computed character by
    character when that gives the same answer. pypinyin cuts a run of Han characters into the longest
    words of its phrase dictionary and reads any other character alone; a name that holds no such word
    (most names) is therefore read character by character, and a character's reading is remembered.
    A call of ``lazy_pinyin`` costs ≈ 20 µs a name, and a feed's names are mostly distinct, so this was
    6 % of a feed's CPU at 100,000 rows; the per-character path ≈ 4 µs. Anything else (a name holding a
    dictionary word, or any character outside pypinyin's Han ranges) goes to ``lazy_pinyin`` itself.
    """
    if _HAN_RUN.fullmatch(name) and not _holds_phrase(name):
        return " ".join(syllable for char in name for syllable in _char_pinyin(char))
    return " ".join(lazy_pinyin(name, style=Style.NORMAL, errors="ignore"))


@lru_cache(maxsize=100_000)  # bounded by the Han repertoire anyway
def _char_pinyin(char: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(char, style=Style.NORMAL, errors="ignore"))


_LONGEST_PHRASE = max(map(len, PHRASES_DICT), default=0)


def _holds_phrase(name: str) -> bool:
    """Whether some run of two or more of ``name``'s characters is a word of pypinyin's phrase dictionary."""
    size = len(name)
    return any(
        name[start:end] in PHRASES_DICT
        for start in range(size - 1)
        for end in range(start + 2, min(size, start + _LONGEST_PHRASE) + 1)
    )


@lru_cache(maxsize=65_536)
def parse_date(text: str) -> dt.date | None:
    m = _DATE.fullmatch(text.strip())
    if m is None:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _clean(text: Any) -> str:
    if type(text) is str:  # the common case (CSV cells); ASCII text is already NFKC
        return (text if text.isascii() else unicodedata.normalize("NFKC", text)).strip()
    if text is None:
        return ""
    if isinstance(text, dt.datetime):
        return text.date().isoformat()
    if isinstance(text, dt.date):
        return text.isoformat()
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    return unicodedata.normalize("NFKC", str(text)).strip()


@dataclass
class RowValidator:
    """Validates the rows of one batch; remembers the rows it accepted to find duplicates inside the batch."""

    department: str
    cutoff: dt.date
    directory: OrgDirectory
    cipher: FieldCipher
    blind_index: BlindIndex
    batch_id: str
    _seen: set[str] = field(default_factory=set)
    _addresses: dict[str, tuple[str | None, str | None, str | None, str]] = field(default_factory=dict)
    _phone_blinds: dict[str, str] = field(default_factory=dict)

    def validate(self, row_number: int, cells: dict[str, Any], *, malformed: bool = False) -> dict[str, Any]:
        """The staged row (``FeedRow`` columns) with ``outcome`` and ``reasons`` for one input row."""
        reasons: list[str] = []
        raw = {f: _clean(cells.get(f)) for f in FIELDS}
        if malformed:
            reasons.append("row_malformed")
        unstorable_text = any_unstorable(list(raw.values()))
        if unstorable_text:  # NUL, another control character, an unpaired surrogate: no store takes it
            for key, value in raw.items():
                reasons.extend(_UNSTORABLE_REASONS[kind] for kind in sorted(unstorable(value)))
                raw[key] = storable(value)
        for key, value in raw.items():
            if len(value) > MAX_CELL:
                reasons.append("field_too_long")
                raw[key] = value[:MAX_CELL]
            formula = value[:1] in ("=", "@") or (
                value[:1] in ("+", "-") and key != "guardian_phone" and len(value) > 1
            )
            if formula and "cell_formula" not in reasons:
                reasons.append("cell_formula")
        out: dict[str, Any] = {
            "batch_id": self.batch_id,
            "row_number": row_number,
            "candidate_id": uuid4_text(),
        }

        name = raw["name"]
        if _CJK_ONLY.fullmatch(name.replace(" ", "")):
            name = name.replace(" ", "")
        if not name:
            reasons.append("name_missing")
        elif not _NAME.fullmatch(name):
            reasons.append("name_invalid")
        else:
            out["name"] = name
            out["name_pinyin"] = name_pinyin(name)

        sex = _SEX.get(raw["sex"]) if raw["sex"] else None
        if raw["sex"] and sex is None:
            reasons.append("sex_invalid")
        birth = parse_date(raw["birth_date"]) if raw["birth_date"] else None
        if raw["birth_date"] and birth is None:
            reasons.append("birth_date_invalid")

        if _id_stored_as_number(cells.get("id_number"), raw["id_number"]):
            reasons.append(
                "id_number_stored_as_number"
            )  # its last digits are the spreadsheet's, not the ID's
            facts = None
        else:
            check = parse_id_number(raw["id_number"], expected_birth_date=birth, expected_sex=sex)
            reasons.extend(str(r) for r in check.errors)
            reasons.extend(str(r) for r in check.warnings)
            facts = check.facts
        if facts is not None:
            normalised = facts.id_number
            out["id_blind"] = self.blind_index.of(normalised)
            out["id_cipher"] = self.cipher.encrypt(normalised, associated_data=ID_AAD)
            out["id_birth_date"] = facts.birth_date
            if sex is None:
                sex = facts.sex
        else:
            if not raw["sex"]:
                reasons.append("sex_missing")
            if not raw["birth_date"]:
                reasons.append("birth_date_missing")
        out["sex"] = sex
        out["birth_date"] = birth
        effective_birth = facts.birth_date if facts is not None else birth
        if effective_birth is not None and not (
            effective_birth <= self.cutoff and MIN_AGE <= age_on(effective_birth, self.cutoff) <= MAX_AGE
        ):
            reasons.append("age_out_of_window")

        self._address(raw, out, reasons)
        self._categories(raw, out, reasons)

        phone = _PHONE_NOISE.sub("", raw["guardian_phone"]).removeprefix("+86")
        if phone and not _PHONE.fullmatch(phone):
            reasons.append("phone_invalid")
            phone = ""
        if phone:
            out["guardian_phone"] = self.cipher.encrypt(phone, associated_data=PHONE_AAD)
            out["guardian_phone_blind"] = self._phone_blind(phone)
        out["guardian_name"] = raw["guardian_name"].replace(" ", "") or None
        out["current_address"] = raw["current_address"] or None

        key = out.get("id_blind") or "|".join(
            str(x) for x in (out.get("name"), effective_birth, sex, out.get("guardian_name"))
        )
        if key in self._seen:
            reasons.append("duplicate_in_batch")

        out["reasons"] = ",".join(dict.fromkeys(reasons))
        out["outcome"] = "rejected" if any(severity(r) == "error" for r in reasons) else "accepted"
        if out["outcome"] == "accepted":  # a rejected row is no earlier row: its corrected copy may follow
            self._seen.add(key)
        if reasons:
            kept = cells_as_text(cells)
            if unstorable_text:
                kept = {f: storable(v) for f, v in kept.items()}
            out["raw_cipher"] = self.cipher.encrypt(
                json.dumps(kept, ensure_ascii=False), associated_data=RAW_ROW_AAD
            )
        return out

    def _phone_blind(self, phone: str) -> str:
        """The blind index of a phone (deterministic, so computed once per distinct phone of the batch)."""
        blind = self._phone_blinds.get(phone)
        if blind is None:
            if len(self._phone_blinds) >= _CACHE_LIMIT:
                self._phone_blinds.clear()
            blind = self._phone_blinds[phone] = self.blind_index.of(phone)
        return blind

    def _match(self, address: str) -> tuple[str | None, str | None, str | None, str]:
        """(town, village, school district, confidence) of an address, once per distinct address text."""
        found = self._addresses.get(address)
        if found is None:
            match = self.directory.match_address(address)
            district = None
            if match.confidence != "none":
                org = self.directory.school_district_for(match.town_code, match.village_code)
                district = org.code if org is not None else None
            if len(self._addresses) >= _CACHE_LIMIT:
                self._addresses.clear()
            found = self._addresses[address] = (
                match.town_code,
                match.village_code,
                district,
                match.confidence,
            )
        return found

    def _address(self, raw: dict[str, str], out: dict[str, Any], reasons: list[str]) -> None:
        address = raw["hukou_address"]
        if not address:
            reasons.append("hukou_address_missing")
            return
        out["hukou_address"] = address
        town, village, district, confidence = self._match(address)
        if confidence == "none":
            reasons.append("address_unmatched")
            return
        out["hukou_town"] = town
        out["hukou_village"] = village
        if village is None:
            reasons.append("address_village_unmatched")
        out["hukou_school_district"] = district

    def _categories(self, raw: dict[str, str], out: dict[str, Any], reasons: list[str]) -> None:
        allowed = DEPARTMENT_CATEGORIES[self.department]
        found: list[str] = []
        for label in filter(None, _CATEGORY_SPLIT.split(raw["categories"])):
            code = CATEGORY_BY_LABEL.get(label)
            if code is None:
                reasons.append("category_unknown")
            elif code not in allowed:
                reasons.append("category_not_for_department")
            elif code not in found:
                found.append(code)
        if not found:
            default = DEFAULT_CATEGORY[self.department]
            if default is not None and not raw["categories"]:
                found.append(default)
            if not raw["categories"]:
                reasons.append("category_missing")
        out["categories"] = ",".join(found)
        if raw["disability_type"]:
            dtype = DISABILITY_BY_LABEL.get(raw["disability_type"])
            if dtype is None:
                reasons.append("disability_type_unknown")
            out["disability_type"] = dtype
        if raw["disability_grade"]:
            grade = GRADE_BY_LABEL.get(raw["disability_grade"])
            if grade is None:
                reasons.append("disability_grade_invalid")
            out["disability_grade"] = grade


def _id_stored_as_number(cell: Any, text: str) -> bool:
    """Whether an ID number cell was a number that may have lost digits: an Excel number cell (or a JSON
    number) of 16 digits or more, or the scientific notation (``3.70406E+17``) such a cell becomes in a
    CSV saved by a spreadsheet. A smaller number (a 15-digit legacy ID) holds every digit, and is read
    as its text."""
    if type(cell) is str:
        return ("E" in text or "e" in text) and _SCIENTIFIC.fullmatch(text) is not None
    return isinstance(cell, int | float) and not isinstance(cell, bool) and abs(cell) >= _EXACT_BELOW


def cells_as_text(cells: dict[str, Any]) -> dict[str, str]:
    return {f: _clean(cells.get(f)) for f in FIELDS}
