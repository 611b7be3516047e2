"""Configuration and manifest of the synthetic district generator."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from baoxue.orgs.directory import OrgDirectory, default_directory

GENERATOR_VERSION = "synth-1"
"""Bumped whenever the same config and seed would produce different files."""


@dataclass(frozen=True)
class NoiseRates:
    """Probability of each kind of clerical noise, applied independently to every department feed row.

    ``mistyped_id`` is split between a one-digit typo and two transposed neighbouring digits;
    ``lowercase_x`` applies only to ID numbers ending in X; ``duplicate_row`` repeats a row later in the
    same batch. The rates are per row and per kind, so a row can carry several kinds of noise.
    """

    missing_id: float = 0.02
    mistyped_id: float = 0.015
    full_width_id: float = 0.01
    lowercase_x: float = 0.3
    id_spaces: float = 0.005
    homophone_name: float = 0.02
    name_whitespace: float = 0.005
    wrong_birth_date: float = 0.01
    wrong_sex: float = 0.002
    abbreviated_address: float = 0.10
    missing_phone: float = 0.05
    duplicate_row: float = 0.002
    # Student registry (学籍) export: much cleaner than department feeds.
    xueji_homophone_name: float = 0.003


@dataclass(frozen=True)
class PopulationRates:
    """Shares of children in each category and situation (fractions of all generated children).

    Family-level categories (registered_poor, low_income, left_behind, orphan, extreme_poverty,
    prisoner_child) are drawn per family, so siblings share them; the others per child.
    """

    sibling: float = 0.30
    """Probability that the next child in a village belongs to the previous child's family."""
    migrant: float = 0.02
    registered_poor: float = 0.06
    low_income: float = 0.03
    extreme_poverty: float = 0.003
    orphan: float = 0.003
    left_behind: float = 0.08
    prisoner_child: float = 0.0015
    disabled: float = 0.01
    out_of_window: float = 0.005
    """Children aged 5 or 15 on the cut-off date, to exercise age validation."""
    deceased: float = 0.0005
    moved_out: float = 0.003
    duplicate_hukou: float = 0.0015
    missing: float = 0.0003
    enrolled_elsewhere: float = 0.015
    not_in_school: float = 0.003
    hukou_only: float = 0.006
    abroad: float = 0.0005
    enrolled_without_xueji: float = 0.002
    deferred: float = 0.001
    exempted: float = 0.0005
    department_coverage: float = 0.98
    """Share of eligible children a non-police department actually lists in one period."""
    stale_police_rows: float = 0.3
    """Share of deceased/moved-out children the police still list in the later period."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines one synthetic district. Same config (and seed) → same files."""

    children: int = 60_000
    seed: int = 2026
    period: str = "2026-09"
    previous_period: str | None = "2026-03"
    as_of: date = date(2026, 8, 31)
    """School-age cut-off date: children are 6-14 full years old on this day."""
    noise: NoiseRates = field(default_factory=NoiseRates)
    rates: PopulationRates = field(default_factory=PopulationRates)
    directory: OrgDirectory = field(default_factory=default_directory, repr=False, compare=False)

    @property
    def periods(self) -> tuple[str, ...]:
        """Feed periods to generate, oldest first."""
        if self.previous_period is None or self.previous_period == self.period:
            return (self.period,)
        return (self.previous_period, self.period)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (the directory is represented by its version)."""
        return {
            "children": self.children,
            "seed": self.seed,
            "period": self.period,
            "previous_period": self.previous_period,
            "as_of": self.as_of.isoformat(),
            "noise": asdict(self.noise),
            "rates": asdict(self.rates),
            "directory_version": self.directory.version,
        }


@dataclass
class Manifest:
    """What one run produced: the config, row counts per file and tallies of the population and noise."""

    version: str
    seed: int
    config: dict[str, Any]
    files: dict[str, int] = field(default_factory=dict)
    """Relative path → number of data rows (header excluded)."""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Tallies: ``category``, ``school_situation``, ``registry_status``, ``noise`` ..."""

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-safe dict (keys sorted for stable output)."""
        return {
            "version": self.version,
            "seed": self.seed,
            "config": self.config,
            "files": dict(sorted(self.files.items())),
            "counts": {k: dict(sorted(v.items())) for k, v in sorted(self.counts.items())},
        }

    def write(self, path: Path) -> None:
        """Write the manifest as indented UTF-8 JSON."""
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
