"""What the stages share: the API, the generated district, what was learnt on the way, the summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.api import Actor, Api
from demo.truth import District, Person

YEAR = 2026


def school_actor(code: str) -> Actor:
    return Actor("school", code)


def district_actor(code: str) -> Actor:
    return Actor("school_district", code)


def town_actor(code: str) -> Actor:
    return Actor("town", code)


@dataclass
class Demo:
    api: Api
    district: District
    out: Path
    quiet: bool = False
    child_of_person: dict[str, str] = field(default_factory=dict)
    """person_id → the registry's child id (learnt from the registry's own list)."""
    person_of_child: dict[str, str] = field(default_factory=dict)
    # children whose hukou address matched no school district (the registry's review queue): only the
    # bureau's jurisdiction covers them until the hukou is cleaned up
    child_without_district: set[str] = field(default_factory=set)
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Calls the services refused although the actor was right to make them (reported, not fatal)."""
    anomalies: list[str] = field(default_factory=list)
    """Outcomes that disagree with what the services should have done (reported in the summary)."""
    state: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    def say(self, stage: str, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self._started
            print(f"[{elapsed:7.1f}s] {stage:<12} {message}", file=sys.stdout, flush=True)

    def lap(self, name: str, started: float, what: str) -> None:
        """Record the seconds since ``started`` as the sub-stage ``name`` (``stage.step``) and say so."""
        seconds = time.monotonic() - started
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        self.say(name.partition(".")[0], f"{what} {seconds:.1f}s")

    def person(self, child_id: str | None) -> Person | None:
        pid = self.person_of_child.get(child_id or "")
        return self.district.people.get(pid) if pid else None

    def child(self, person_id: str) -> str | None:
        return self.child_of_person.get(person_id)

    def problem(self, stage: str, message: str) -> None:
        self.problems.append(f"{stage}: {message}")
        self.say(stage, f"! {message}")

    def anomaly(self, stage: str, message: str) -> None:
        self.anomalies.append(f"{stage}: {message}")
        self.say(stage, f"? {message}")
