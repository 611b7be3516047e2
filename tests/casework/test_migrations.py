"""Casework migrations on data: revision 0005 gives each dropout report the episode of the case it was
filed in, and its downgrade keeps one report per case."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from baoxue.db import UTCDateTime, sync_url
from baoxue.migrations import alembic_config, upgrade
from casework.main import SERVICE

CASES = sa.table(
    "cases",
    *(sa.column(n) for n in ("id", "child_key", "state", "opened_signal", "opened_on", "signal_count")),
    *(sa.column(n) for n in ("overdue_published", "reopen_count", "version", "created_by")),
    sa.column("planned_measures", sa.JSON),
    sa.column("field_versions", sa.JSON),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)
TRANSITIONS = sa.table(
    "case_transitions",
    *(sa.column(n) for n in ("case_id", "from_state", "to_state", "on", "by", "note")),
    sa.column("at", UTCDateTime),
)
REPORTS = sa.table(
    "case_reports",
    *(sa.column(n) for n in ("case_id", "basic_info", "reason", "measures", "result", "bureau_code")),
    *(sa.column(n) for n in ("filed_on", "report_due", "on_time", "filed_by", "episode")),
    sa.column("created_at", UTCDateTime),
)


def _at(day: int) -> dt.datetime:
    return dt.datetime(2026, 10, day, 8, tzinfo=dt.UTC)


def _case(case_id: str, reopen_count: int) -> dict[str, object]:
    return {
        "id": case_id,
        "child_key": f"c:{case_id}",
        "state": "suspected",
        "opened_signal": "school_report",
        "opened_on": dt.date(2026, 10, 1),
        "signal_count": 1,
        "overdue_published": False,
        "reopen_count": reopen_count,
        "version": 1,
        "created_by": "t",
        "planned_measures": [],
        "field_versions": {},
        "created_at": _at(1),
        "updated_at": _at(1),
    }


def _report(case_id: str, day: int) -> dict[str, object]:
    return {
        "case_id": case_id,
        "basic_info": "b",
        "reason": "other",
        "measures": "m",
        "result": "r",
        "bureau_code": "370406D01",
        "filed_on": dt.date(2026, 10, day),
        "report_due": dt.date(2026, 10, 20),
        "on_time": True,
        "filed_by": "t",
        "created_at": _at(day),
    }


def _reopened(case_id: str, day: int) -> dict[str, object]:
    return {
        "case_id": case_id,
        "from_state": "closed",
        "to_state": "suspected",
        "on": dt.date(2026, 10, day),
        "by": "enrollment",
        "note": "relapse",
        "at": _at(day),
    }


def test_reports_get_the_episode_they_were_filed_in_and_downgrade_keeps_the_latest(baoxue_infra):
    url = baoxue_infra.database_url("casework_report_episodes")
    upgrade(SERVICE.migrations_dir, url, "0004")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as c:
            # before: reported on the 5th, reopened on the 10th and 20th; after: reopened on the 10th,
            # reported (for the first time) on the 15th; plain: never reopened.
            c.execute(sa.insert(CASES), [_case("before", 2), _case("after", 1), _case("plain", 0)])
            c.execute(
                sa.insert(TRANSITIONS),
                [_reopened("before", 10), _reopened("before", 20), _reopened("after", 10)],
            )
            c.execute(sa.insert(REPORTS), [_report("before", 5), _report("after", 15), _report("plain", 6)])
        upgrade(SERVICE.migrations_dir, url, "head")
        with engine.begin() as c:
            episodes = dict(c.execute(sa.text("SELECT case_id, episode FROM case_reports")).all())
            assert episodes == {"before": 0, "after": 1, "plain": 0}
            c.execute(sa.insert(REPORTS).values(**_report("before", 22), episode=2))
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(sa.insert(REPORTS).values(**_report("before", 23), episode=2))

        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0004")
        with engine.begin() as c:
            kept = c.execute(sa.text("SELECT case_id, filed_on FROM case_reports ORDER BY case_id")).all()
            assert [(r[0], str(r[1])) for r in kept] == [
                ("after", "2026-10-15"),
                ("before", "2026-10-22"),
                ("plain", "2026-10-06"),
            ]
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(sa.insert(REPORTS).values(**_report("plain", 7)))
        upgrade(SERVICE.migrations_dir, url, "head")
    finally:
        engine.dispose()
