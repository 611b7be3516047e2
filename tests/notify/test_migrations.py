"""Notify migrations on data: revision 0018 leaves one active ladder per case (the one serving the highest
episode, then the latest created), resolves the others as superseded, and has the database refuse a
second active ladder."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from baoxue.db import UTCDateTime, sync_url
from baoxue.migrations import alembic_config, upgrade
from baoxue.workdays import today_in_china
from notify.main import SERVICE

ESCALATIONS = sa.table(
    "escalations",
    *(sa.column(n) for n in ("id", "case_id", "level", "state", "resolution", "deadline_warnings")),
    *(sa.column(n, sa.Integer) for n in ("episode_sequence", "version")),
    *(sa.column(n, sa.Date) for n in ("level_entered_on", "level_deadline", "resolved_on")),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)
STEPS = sa.table(
    "escalation_steps",
    *(sa.column(n) for n in ("id", "escalation_id", "level", "kind", "trigger", "actor", "note")),
    sa.column("on", sa.Date),
    sa.column("created_at", UTCDateTime),
)
DEADLINES = sa.table(
    "deadlines",
    *(sa.column(n) for n in ("id", "kind", "org", "subject_id", "case_id", "warnings", "status")),
    *(sa.column(n, sa.Date) for n in ("due_date", "closed_on")),
    sa.column("created_at", UTCDateTime),
)


def _at(day: int) -> dt.datetime:
    return dt.datetime(2026, 10, day, 8, tzinfo=dt.UTC)


def _ladder(
    ladder_id: str,
    case_id: str,
    episode: int | None,
    day: int,
    *,
    level: str = "L1_school",
    state: str = "active",
    resolution: str | None = None,
    version: int = 1,
) -> dict[str, object]:
    return {
        "id": ladder_id,
        "case_id": case_id,
        "level": level,
        "state": state,
        "resolution": resolution,
        "deadline_warnings": "",
        "episode_sequence": episode,
        "version": version,
        "level_entered_on": dt.date(2026, 10, day),
        "level_deadline": dt.date(2026, 10, day + 10),
        "resolved_on": None if state == "active" else dt.date(2026, 10, day + 1),
        "created_at": _at(day),
        "updated_at": _at(day),
    }


def _deadline(subject_id: str, kind: str, status: str = "open") -> dict[str, object]:
    return {
        "id": f"d-{subject_id}",
        "kind": kind,
        "org": "370406001",
        "subject_id": subject_id,
        "case_id": None,
        "warnings": "",
        "status": status,
        "due_date": dt.date(2026, 10, 20),
        "closed_on": dt.date(2026, 10, 12) if status != "open" else None,
        "created_at": _at(1),
    }


def test_upgrade_keeps_the_ladder_of_the_highest_episode_and_refuses_a_second_active_one(baoxue_infra):
    url = baoxue_infra.database_url("notify_one_active_ladder")
    upgrade(SERVICE.migrations_dir, url, "0017")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as c:
            c.execute(
                sa.insert(ESCALATIONS),
                [
                    # race: B serves the highest episode; C was created last but serves an earlier one.
                    _ladder("A", "race", 2, 1, level="L2_town_order"),
                    _ladder("B", "race", 4, 2),
                    _ladder("C", "race", 3, 3),
                    # twice: two ladders of one episode: the later created is kept.
                    _ladder("D", "twice", 6, 1),
                    _ladder("E", "twice", 6, 2),
                    # legacy: a ladder from before the episodes (none) counts lowest, however late.
                    _ladder("F", "legacy", None, 5),
                    _ladder("G", "legacy", 3, 1),
                    # old: both from before the episodes: the later created is kept.
                    _ladder("H", "old", None, 1),
                    _ladder("I", "old", None, 2),
                    # single: one active ladder and a resolved one: nothing to do.
                    _ladder("J", "single", 2, 1),
                    _ladder("K", "single", 1, 1, state="resolved", resolution="returned", version=3),
                ],
            )
            c.execute(
                sa.insert(DEADLINES),
                [
                    _deadline("A:L1_school", "escalation_L1_school", status="met"),
                    _deadline("A:L2_town_order", "escalation_L2_town_order"),
                    _deadline("B:L1_school", "escalation_L1_school"),
                    _deadline("C:L1_school", "escalation_L1_school"),
                    _deadline("D:L1_school", "escalation_L1_school"),
                    _deadline("J:L1_school", "escalation_L1_school"),
                    _deadline("race", "case_report"),  # the school's report: not the ladder's
                ],
            )
        before = today_in_china()
        upgrade(SERVICE.migrations_dir, url, "0018")
        after = today_in_china()
        with engine.begin() as c:
            ladders = {
                r.id: (r.state, r.resolution, r.version, r.resolved_on)
                for r in c.execute(sa.select(ESCALATIONS))
            }
            steps = c.execute(sa.select(STEPS).order_by(STEPS.c.escalation_id)).all()
            deadlines = dict(c.execute(sa.select(DEADLINES.c.subject_id, DEADLINES.c.status)).all())
            closed_on = dict(c.execute(sa.select(DEADLINES.c.subject_id, DEADLINES.c.closed_on)).all())
            outbox = c.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
        day = ladders["A"][3]
        assert day in (before, after)
        superseded = ("resolved", "superseded", 2, day)
        assert ladders == {
            "A": superseded,
            "B": ("active", None, 1, None),
            "C": superseded,
            "D": superseded,
            "E": ("active", None, 1, None),
            "F": superseded,
            "G": ("active", None, 1, None),
            "H": superseded,
            "I": ("active", None, 1, None),
            "J": ("active", None, 1, None),
            "K": ("resolved", "returned", 3, dt.date(2026, 10, 2)),
        }
        assert [(s.escalation_id, s.level, s.kind, s.trigger, s.on, s.actor) for s in steps] == [
            ("A", "L2_town_order", "resolved", "superseded", day, "notify:ladder"),
            ("C", "L1_school", "resolved", "superseded", day, "notify:ladder"),
            ("D", "L1_school", "resolved", "superseded", day, "notify:ladder"),
            ("F", "L1_school", "resolved", "superseded", day, "notify:ladder"),
            ("H", "L1_school", "resolved", "superseded", day, "notify:ladder"),
        ]
        kept = {"A": "B", "C": "B", "D": "E", "F": "G", "H": "I"}
        assert all(s.note.endswith(f"the one kept is {kept[s.escalation_id]}") for s in steps)
        assert deadlines == {
            "A:L1_school": "met",
            "A:L2_town_order": "cancelled",
            "B:L1_school": "open",
            "C:L1_school": "cancelled",
            "D:L1_school": "cancelled",
            "J:L1_school": "open",
            "race": "open",
        }
        assert closed_on["A:L2_town_order"] == closed_on["C:L1_school"] == day
        assert closed_on["A:L1_school"] == dt.date(2026, 10, 12)
        # Casework is not told (see the migration): no EscalationResolved in the outbox.
        assert outbox == 0

        # The database refuses a second active ladder for a case; a resolved one, or another case's, is fine.
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(sa.insert(ESCALATIONS).values(**_ladder("L", "race", 9, 9)))
        with engine.begin() as c:
            c.execute(sa.insert(ESCALATIONS).values(**_ladder("M", "race", 9, 9, state="resolved")))
            c.execute(sa.insert(ESCALATIONS).values(**_ladder("N", "other", 9, 9)))

        # Downgrade drops the index only (the superseded ladders stay resolved); upgrading again resolves
        # what broke the rule meanwhile.
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0017")
        with engine.begin() as c:
            assert (
                c.execute(sa.select(ESCALATIONS.c.state).where(ESCALATIONS.c.id == "A")).scalar()
                == "resolved"
            )
            c.execute(sa.insert(ESCALATIONS).values(**_ladder("L", "race", 9, 9)))
        upgrade(SERVICE.migrations_dir, url, "head")
        with engine.begin() as c:
            race = dict(
                c.execute(
                    sa.select(ESCALATIONS.c.id, ESCALATIONS.c.resolution).where(
                        ESCALATIONS.c.case_id == "race", ESCALATIONS.c.state == "active"
                    )
                ).all()
            )
            assert race == {"L": None}
            assert (
                c.execute(sa.select(ESCALATIONS.c.resolution).where(ESCALATIONS.c.id == "B")).scalar()
                == "superseded"
            )
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(sa.insert(ESCALATIONS).values(**_ladder("P", "race", 10, 10)))
    finally:
        engine.dispose()
