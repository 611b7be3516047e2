"""Frequency-weighted Chinese names and homophone confusions for synthetic people."""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")

TWO_CHAR_GIVEN_CHILD = 0.75
"""Share of children with a two-character given name."""
TWO_CHAR_GIVEN_ADULT = 0.55
DOUBLED_GIRL_NAME = 0.02
"""Share of girls' two-character names that repeat one character (婷婷, 欣欣)."""


def _data_lines(name: str) -> list[list[str]]:
    """Tab-separated, non-comment lines of a data file."""
    with (DATA_DIR / name).open(encoding="utf-8") as fh:
        return [line.rstrip("\n").split("\t") for line in fh if line.strip() and not line.startswith("#")]


class _Weighted:
    """Draw items by weight in O(log n): one uniform number and a bisect over cumulative weights."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: list[str], weights: list[float]) -> None:
        pairs = [(i, w) for i, w in zip(items, weights, strict=True) if w > 0]
        self.items = [i for i, _ in pairs]
        self.cum = list(accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def draw(self, rand: float) -> str:
        """The item at uniform position ``rand`` in [0, 1)."""
        try:
            return self.items[bisect(self.cum, rand * self.total)]
        except IndexError:  # rand * total rounded up to total
            return self.items[-1]


@dataclass(frozen=True)
class NameBank:
    """Surname and given-name tables plus the homophone map. Load once with :func:`name_bank`."""

    surnames: _Weighted
    boy: _Weighted
    girl: _Weighted
    man: _Weighted
    woman: _Weighted
    homophones: dict[str, tuple[str, ...]]
    """Character → the other characters of its confusable group."""
    surname_variants: dict[str, tuple[str, ...]]

    def surname(self, rng: random.Random) -> str:
        """A surname drawn by the Shandong-weighted population share."""
        return self.surnames.draw(rng.random())

    def given(self, rng: random.Random, sex: str, adult: bool = False) -> str:
        """A one- or two-character given name for sex ``M``/``F``, child or adult (guardian) cohort."""
        rand = rng.random
        if adult:
            table = self.man if sex == "M" else self.woman
            two = rand() < TWO_CHAR_GIVEN_ADULT
        else:
            table = self.boy if sex == "M" else self.girl
            two = rand() < TWO_CHAR_GIVEN_CHILD
        first = table.draw(rand())
        if not two:
            return first
        if sex == "F" and not adult and rand() < DOUBLED_GIRL_NAME:
            return first + first
        second = table.draw(rand())
        while second == first:
            second = table.draw(rand())
        return first + second

    def homophone_variant(self, name: str, surname_len: int, rng: random.Random) -> str:
        """``name`` with one character swapped for a confusable one; unchanged if none is confusable.

        Prefers the given name; a surname with a known variant (付/傅) is swapped one time in five.
        """
        surname, given = name[:surname_len], name[surname_len:]
        if surname in self.surname_variants and rng.random() < 0.2:
            return rng.choice(self.surname_variants[surname]) + given
        positions = [i for i, ch in enumerate(given) if ch in self.homophones]
        if not positions:
            return name
        i = rng.choice(positions)
        replacement = rng.choice(self.homophones[given[i]])
        return surname + given[:i] + replacement + given[i + 1 :]


@lru_cache(maxsize=1)
def name_bank() -> NameBank:
    """Load the shipped name tables (cached)."""
    surname_rows = _data_lines("surnames.tsv")
    surnames = _Weighted([r[0] for r in surname_rows], [float(r[2]) for r in surname_rows])
    char_rows = _data_lines("given_chars.tsv")
    chars = [r[0] for r in char_rows]
    columns = [[float(r[i]) for r in char_rows] for i in range(1, 5)]
    homophones: dict[str, tuple[str, ...]] = {}
    surname_variants: dict[str, tuple[str, ...]] = {}
    for (line,) in (row[:1] for row in _data_lines("homophones.txt")):
        target = homophones
        group = line.strip()
        if group.startswith("surname:"):
            target, group = surname_variants, group.removeprefix("surname:")
        for ch in group:
            others = tuple(c for c in group if c != ch)
            target[ch] = tuple(dict.fromkeys(target.get(ch, ()) + others))
    return NameBank(
        surnames=surnames,
        boy=_Weighted(chars, columns[0]),
        girl=_Weighted(chars, columns[1]),
        man=_Weighted(chars, columns[2]),
        woman=_Weighted(chars, columns[3]),
        homophones=homophones,
        surname_variants=surname_variants,
    )


def homophone_groups() -> list[str]:
    """The given-name confusion groups as listed in the data file (for inspection and tests)."""
    return [row[0].strip() for row in _data_lines("homophones.txt") if not row[0].startswith("surname:")]
