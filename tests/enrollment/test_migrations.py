"""Enrollment migrations on data, up and down, on the database in use (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import create_engine, inspect, text

from baoxue.db import sync_url
from baoxue.migrations import alembic_config, upgrade
from enrollment.main import SERVICE
from tests.enrollment.conftest import SCHOOL_A, SCHOOL_B


def test_0008_keys_absence_reports_by_school_and_batch(baoxue_infra):
    url = baoxue_infra.database_url("enrollment_absence_migration")
    upgrade(SERVICE.migrations_dir, url, "0007")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO absence_report_lines (batch_id, school_code, student_id, reported_on, "
                    "unexcused_since, unexcused_days) VALUES "
                    "('2026-W41', :a, 's1', '2026-10-09', '2026-09-11', 20), "
                    "('2026-W41', :a, 's2', '2026-10-09', '2026-09-14', 18), "
                    "('2026-W42', :a, 's1', '2026-10-16', '2026-09-11', 25), "
                    "('2026-W41', :b, 's3', '2026-10-10', '2026-09-11', 20)"
                ),
                {"a": SCHOOL_A, "b": SCHOOL_B},
            )
        upgrade(SERVICE.migrations_dir, url, "0008")
        with engine.begin() as c:
            rows = c.execute(
                text(
                    "SELECT school_code, batch_id, reported_on, lines FROM absence_reports "
                    "ORDER BY school_code, batch_id"
                )
            ).all()
        assert [(s, b, str(d), n) for s, b, d, n in rows] == [
            (SCHOOL_A, "2026-W41", "2026-10-09", 2),
            (SCHOOL_A, "2026-W42", "2026-10-16", 1),
            (SCHOOL_B, "2026-W41", "2026-10-10", 1),
        ]
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0007")
        assert "absence_reports" not in inspect(engine).get_table_names()
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM absence_report_lines")).scalar() == 4
        upgrade(SERVICE.migrations_dir, url, "0008")
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM absence_reports")).scalar() == 3
    finally:
        engine.dispose()


def test_0009_keeps_frozen_results_per_version(baoxue_infra):
    url = baoxue_infra.database_url("enrollment_results_migration")
    upgrade(SERVICE.migrations_dir, url, "0008")
    engine = create_engine(sync_url(url))
    frozen_at = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    campaign = (
        "INSERT INTO campaigns (id, kind, year, as_of, cutoff_date, deadline, rule_set_version, district_code, "
        "state, runs, result_version, frozen_result, frozen_at, created_at) VALUES (:id, :kind, 2026, "
        "'2026-09-30', '2026-08-31', '2026-10-31', '2026.1', '370406', :state, 1, :version, :result, :at, :created)"
    )
    try:
        with engine.begin() as c:
            c.execute(
                text(campaign),
                {
                    "id": "c-frozen",
                    "kind": "september_verification",
                    "state": "frozen",
                    "version": 2,
                    "result": '{"result_version": 2}',
                    "at": frozen_at,
                    "created": frozen_at,
                },
            )
            c.execute(
                text(campaign),
                {
                    "id": "c-open",
                    "kind": "november_comparison",
                    "state": "open",
                    "version": 0,
                    "result": None,
                    "at": None,
                    "created": frozen_at,
                },
            )
        upgrade(SERVICE.migrations_dir, url, "0009")
        assert "frozen_result" not in {c["name"] for c in inspect(engine).get_columns("campaigns")}
        with engine.begin() as c:
            rows = c.execute(text("SELECT campaign_id, version, result FROM campaign_results")).all()
            assert [tuple(r) for r in rows] == [("c-frozen", 2, '{"result_version": 2}')]
            # a third freeze after the upgrade: version 3 beside version 2
            c.execute(
                text(
                    "INSERT INTO campaign_results (campaign_id, version, result, frozen_at) "
                    "VALUES ('c-frozen', 3, '{\"result_version\": 3}', :at)"
                ),
                {"at": frozen_at},
            )
            c.execute(text("UPDATE campaigns SET result_version = 3 WHERE id = 'c-frozen'"))
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0008")
        assert "campaign_results" not in inspect(engine).get_table_names()
        with engine.begin() as c:
            kept = dict(c.execute(text("SELECT id, frozen_result FROM campaigns")).all())
        assert kept == {"c-frozen": '{"result_version": 3}', "c-open": None}  # the latest version
        upgrade(SERVICE.migrations_dir, url, "0009")
        with engine.begin() as c:
            assert c.execute(text("SELECT campaign_id, version FROM campaign_results")).all() == [
                ("c-frozen", 3)
            ]
    finally:
        engine.dispose()
