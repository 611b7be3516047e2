"""Shared pieces of the security tests: the services under attack, tallies and the printed figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from baoxue.testing.attacks import Operation

SERVICES = ["registry", "enrollment", "casework", "notify"]

# Filled by the tests, printed by pytest_terminal_summary: the figures docs/security.md quotes.
FIGURES: Counter[str] = Counter()

# Defects found in services (not ours to fix), reported to their owners and listed in the report.
# (service, method, path, kind) → what happens. They are counted as "reported", apart from new leaks,
# so the suite stays green while the owners fix them; a NEW leak of any kind fails the test.
REPORTED: dict[tuple[str, str, str, str], str] = {}


@dataclass
class Tally:
    """Combinations tried, leaks, and reported (known) defects of one service and one kind of check."""

    service: str
    kind: str
    tried: int = 0
    leaks: list[tuple[str, ...]] = field(default_factory=list)
    reported: list[tuple[str, ...]] = field(default_factory=list)

    def leak(self, op: Operation, check: str, *what: Any) -> None:
        entry = (op.label, check, *(str(w) for w in what))
        if (op.service, op.method, op.path, check) in REPORTED:
            self.reported.append(entry)
        else:
            self.leaks.append(entry)

    def publish(self) -> None:
        FIGURES[f"{self.kind}: {self.service}: combinations"] += self.tried
        FIGURES[f"{self.kind}: {self.service}: leaks"] += len(self.leaks)
        if self.reported:
            FIGURES[f"{self.kind}: {self.service}: reported defects (known, see REPORTED)"] += len(
                self.reported
            )
        print(
            f"{self.service} {self.kind}: {self.tried} combinations tried, {len(self.leaks)} leaks, "
            f"{len(self.reported)} reported"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("security figures")
        for key in sorted(FIGURES):
            terminalreporter.write_line(f"{key}: {FIGURES[key]}")
