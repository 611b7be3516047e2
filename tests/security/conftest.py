"""Shared pieces of the security tests: the services under attack and a summary printed at the end."""

from __future__ import annotations

from collections import Counter

import pytest

SERVICES = ["registry", "enrollment", "casework", "notify"]

# Filled by the tests, printed by pytest_terminal_summary: the figures docs/security.md quotes.
FIGURES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("security figures")
        for key in sorted(FIGURES):
            terminalreporter.write_line(f"{key}: {FIGURES[key]}")
