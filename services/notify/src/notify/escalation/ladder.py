"""The ladder of the notice's measure 10: who acts at each level, for how long, with which documents."""

from __future__ import annotations

from dataclasses import dataclass

from baoxue.contracts.notify import EscalationLevel
from baoxue.orgs.directory import OrgDirectory
from notify.settings import NotifySettings


@dataclass(frozen=True)
class Level:
    code: EscalationLevel
    label_en: str
    label_zh: str
    actor_role: str
    workdays_setting: str
    document_kind: str | None
    """Issued automatically when the case enters the level (by the acting organisation)."""


LADDER: tuple[Level, ...] = (
    Level("L1_school", "School persuasion", "学校劝返", "school", "ladder_workdays_l1", "parent_letter"),
    Level(
        "L2_town_order",
        "Town order to correct within a deadline",
        "镇街责令限期改正",
        "town",
        "ladder_workdays_l2",
        "correction_order",
    ),
    Level(
        "L3_judicial",
        "Judicial documents through the justice bureau",
        "司法文书",
        "justice",
        "ladder_workdays_l3",
        "judicial_referral",
    ),
    Level(
        "L4_legal_action",
        "Legal action against the guardians",
        "依法追究法律责任",
        "justice",
        "ladder_workdays_l4",
        None,
    ),
)
BY_CODE = {level.code: level for level in LADDER}


def level(code: str) -> Level:
    return BY_CODE[code]  # type: ignore[index]


def next_level(code: str) -> Level | None:
    index = [lv.code for lv in LADDER].index(code)  # type: ignore[arg-type]
    return LADDER[index + 1] if index + 1 < len(LADDER) else None


def workdays(lv: Level, settings: NotifySettings) -> int:
    return int(getattr(settings, lv.workdays_setting))


def actor_org(lv: Level, directory: OrgDirectory, *, school_code: str | None, hukou_town: str | None) -> str:
    """The organisation that acts at this level for a case."""
    if lv.actor_role == "school" and school_code:
        return school_code
    if lv.actor_role in ("school", "town"):
        town = hukou_town or (directory.town_of(school_code) if school_code else None)
        if town:
            return town
        return directory.by_role("bureau").code
    return directory.by_role("justice").code
