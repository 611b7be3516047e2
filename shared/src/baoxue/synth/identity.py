"""Citizen ID numbers, student numbers and phone numbers for synthetic people."""

from __future__ import annotations

import random
from collections.abc import Callable

DISTRICT_CODE = "370406"
NEIGHBOUR_CODES = ("370402", "370403", "370404", "370405", "370481")
"""枣庄 市中区, 薛城区, 峄城区, 台儿庄区, 滕州市: children born while the family was registered next door."""
RETIRED_CODES = ("370421",)
"""滕县, in use until 1987 (then 滕州市, 370481): an address code not valid in a child's birth year."""
OVERFLOW_CODES = ("370811", "370830", "370826", "370883", "371321", "371322", "371324", "371326")
"""Other Shandong county codes used only when a (code, birth date, sex) runs out of sequence numbers."""

PHONE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("166", "173", "176", "177"),
    *(f"18{d}" for d in range(10)),
    *("191", "193", "195", "198", "199"),
)


def _check_character() -> Callable[[str], str]:
    """The ISO 7064 MOD 11-2 check function of :mod:`baoxue.pii.citizen_id` (imported lazily)."""
    from baoxue.pii.citizen_id import check_character

    return check_character


class IdFactory:
    """Hands out valid, unique 18-character ID numbers.

    Uniqueness is by construction: for each (address code, birth date, sex) a counter walks the sequence
    numbers upwards (odd for boys, even for girls) in random steps, so memory stays small at any scale.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[str, int] = {}
        self._check = _check_character()

    def make(self, address_code: str, ymd: str, sex: str) -> str:
        """A new ID number for someone born on ``ymd`` (YYYYMMDD) of sex ``M``/``F``."""
        rand = self._rng.random
        for code in (address_code, *OVERFLOW_CODES):
            key = code + ymd + sex
            current = self._next.get(key)
            if current is None:
                seq = int(rand() * 40) * 2 + (1 if sex == "M" else 2)
            else:
                seq = current + 2 * (int(rand() * 3) + 1)
            if seq <= 999:
                self._next[key] = seq
                first17 = f"{code}{ymd}{seq:03d}"
                return first17 + self._check(first17)
            self._next[key] = 1000
        raise RuntimeError(f"sequence numbers exhausted for {address_code} {ymd}")

    def j_number(self, ymd: str, real_id: str) -> str:
        """A ``J`` student number: J + 18 characters built like an ID (valid check), not the real ID."""
        while True:
            first17 = f"{DISTRICT_CODE}{ymd}{self._rng.randrange(1000):03d}"
            number = first17 + self._check(first17)
            if number != real_id:
                return "J" + number

    def l_number(self, ymd: str) -> str:
        """A temporary ``L`` student number: L + 17 digits that carry no check character."""
        return f"L{DISTRICT_CODE}{ymd}{self._rng.randrange(1000):03d}"


def phone(rand: Callable[[], float]) -> str:
    """A plausible 11-digit mainland mobile number; ``rand`` is a ``Random.random`` bound method."""
    return f"{PHONE_PREFIXES[int(rand() * len(PHONE_PREFIXES))]}{int(rand() * 100_000_000):08d}"
