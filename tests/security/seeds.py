"""The small, explicit seeding table of the authorisation matrix: how to create one object per service.

Each seed creates an object through the service's public API inside a given school (and its town);
the matrix creates one in school A and one in school B, then attacks every operation whose path
parameter is named ``param`` with the foreign object's id. Add a line when a service gains a create
endpoint that takes an organisation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baoxue.pii.citizen_id import check_character

_serial = itertools.count(1)


def fresh_id_number(birth: str = "20160502") -> str:
    """A valid 18-character ID number (Shanting address code, valid check character), new each call."""
    first17 = f"370406{birth}{next(_serial) % 1000:03d}"
    return first17 + check_character(first17)


@dataclass(frozen=True)
class Seed:
    service: str
    path: str
    role: str
    body: Callable[[str, str], dict[str, Any]]  # (school code, town code) → request body
    param: str  # the path parameter naming such objects, e.g. "case_id"
    id_field: str = "id"


SEEDS: list[Seed] = [
    Seed(
        "casework",
        "/v1/cases",
        "school",
        lambda school, town: {
            "school_code": school,
            "hukou_town": town,
            "student_id": f"stu-{next(_serial)}",
            "reason": "learning_weariness",
            "analysis": "连续三周未到校",
            "responsible_person": "班主任",
            "planned_measures": ["家访"],
            "detected_on": "2026-11-20",
        },
        "case_id",
    ),
    Seed(
        "enrollment",
        "/v1/students",
        "school",
        lambda school, town: {
            "school_code": school,
            "grade": 4,
            "id_number": (idn := fresh_id_number()),
            "student_number": "G" + idn,
        },
        "student_id",
    ),
]
