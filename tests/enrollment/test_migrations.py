"""Enrollment migrations on data, up and down, on the database in use (SQLite or PostgreSQL)."""

from __future__ import annotations

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
