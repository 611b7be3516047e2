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


def test_0010_makes_every_local_record_pending_for_the_push_once(baoxue_infra):
    """Records from before the pushed version start at 0: each is pushed once more (what the old
    checkpoint skipped included), and is then marked; the downgrade drops the column."""
    url = baoxue_infra.database_url("enrollment_pushed_version_migration")
    upgrade(SERVICE.migrations_dir, url, "0009")
    engine = create_engine(sync_url(url))
    at = dt.datetime(2026, 10, 8, 8, 0, tzinfo=dt.UTC)
    record = (
        "INSERT INTO student_records (id, student_number_kind, student_number_enc, student_number_index, "
        "id_number_enc, id_blind_index, school_code, grade, status, status_since, suspension_extended, "
        "source, version, created_at, updated_at) VALUES (:id, 'L', 'x', :id, 'x', :id, :school, 3, "
        "'enrolled', '2026-09-01', false, :source, :version, :at, :at)"
    )
    try:
        with engine.begin() as c:
            for rid, source, version in (("r-1", "local", 1), ("r-2", "local", 4), ("r-3", "provincial", 1)):
                c.execute(
                    text(record),
                    {"id": rid, "school": SCHOOL_A, "source": source, "version": version, "at": at},
                )
        upgrade(SERVICE.migrations_dir, url, "0010")
        pending = (
            "SELECT id FROM student_records WHERE source = 'local' AND pushed_version <> version ORDER BY id"
        )
        with engine.begin() as c:
            assert [r for (r,) in c.execute(text(pending)).all()] == ["r-1", "r-2"]
            c.execute(text("UPDATE student_records SET pushed_version = version WHERE id = 'r-2'"))
            assert [r for (r,) in c.execute(text(pending)).all()] == ["r-1"]
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0009")
        assert "pushed_version" not in {c["name"] for c in inspect(engine).get_columns("student_records")}
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM student_records")).scalar() == 3
    finally:
        engine.dispose()


def test_0011_cancels_the_open_transfers_of_records_closed_before_it(baoxue_infra):
    url = baoxue_infra.database_url("enrollment_transfer_closed_migration")
    upgrade(SERVICE.migrations_dir, url, "0010")
    engine = create_engine(sync_url(url))
    at = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    record = (
        "INSERT INTO student_records (id, student_number_kind, student_number_enc, student_number_index, "
        "id_number_enc, id_blind_index, school_code, grade, status, status_since, suspension_extended, "
        "source, version, created_at, updated_at) VALUES (:id, 'L', 'x', :id, 'x', :id, :school, 3, "
        ":status, :since, false, 'local', 2, :at, :at)"
    )
    transfer = (
        "INSERT INTO student_transfers (id, student_id, from_school, to_school, requested_on, due_on, state, "
        "version) VALUES (:id, :student, :a, :b, '2026-09-07', '2026-09-20', :state, 1)"
    )
    try:
        with engine.begin() as c:
            for rid, status, since in (
                ("r-out", "dropped_out", "2026-09-08"),
                ("r-in", "enrolled", "2026-09-01"),
            ):
                c.execute(
                    text(record), {"id": rid, "school": SCHOOL_A, "status": status, "since": since, "at": at}
                )
            for tid, student, state in (
                ("t-1", "r-out", "hanging"),
                ("t-2", "r-in", "requested"),
                ("t-3", "r-out", "rejected"),
            ):
                c.execute(
                    text(transfer),
                    {"id": tid, "student": student, "a": SCHOOL_A, "b": SCHOOL_B, "state": state},
                )
        upgrade(SERVICE.migrations_dir, url, "0011")
        with engine.begin() as c:
            rows = c.execute(
                text("SELECT id, state, closed_reason, closed_on, version FROM student_transfers ORDER BY id")
            ).all()
        assert [(i, st, r, str(on) if on else None, v) for i, st, r, on, v in rows] == [
            ("t-1", "cancelled", "student_dropped_out", "2026-09-08", 2),
            ("t-2", "requested", None, None, 1),
            ("t-3", "rejected", None, None, 1),
        ]
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0010")
        assert "closed_reason" not in {c["name"] for c in inspect(engine).get_columns("student_transfers")}
    finally:
        engine.dispose()
