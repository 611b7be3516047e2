"""Registry migrations on data: revision 0003 leaves no plaintext guardian phone behind; 0008 points merged
records at the end of their chain of merges."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from baoxue.contracts.registry import ChildStatusChanged
from baoxue.db import sync_url
from baoxue.events.envelope import Envelope
from baoxue.migrations import alembic_config, upgrade
from baoxue.pii.crypto import BlindIndex, FieldCipher, keys_from_setting
from registry.children.models import Child
from registry.main import SERVICE
from registry.settings import RegistrySettings

PHONE_AAD = b"registry.guardian_phone"


def test_upgrade_encrypts_existing_plaintext_phones(baoxue_infra):
    url = baoxue_infra.database_url("registry_phones_migration")
    upgrade(SERVICE.migrations_dir, url, "0002")
    engine = create_engine(sync_url(url))
    now = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO children (id, district, guardian_phone, categories, sources, status, "
                    "needs_review, version, created_at, updated_at) VALUES "
                    "('c1', '370406', '13800000001', ',', ',', 'active', :no, 1, :now, :now), "
                    "('c2', '370406', NULL, ',', ',', 'active', :no, 1, :now, :now)"
                ),
                {"no": False, "now": now},
            )
            c.execute(
                text(
                    "INSERT INTO feed_rows (batch_id, row_number, outcome, reasons, candidate_id, "
                    "guardian_phone, categories) VALUES ('b1', 2, 'accepted', '', 'c1', '13800000001', ''), "
                    "('b1', 3, 'rejected', 'name_missing', 'x', '06321234567', '')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO child_attributes (child_id, attribute, value, department, first_batch_id, "
                    "first_period, last_batch_id, last_period) VALUES "
                    "('c1', 'guardian_phone', '13800000001', 'police', 'b1', '2026-09', 'b1', '2026-09'), "
                    "('c1', 'guardian_phone', '13900000002', 'civil', 'b1', '2026-09', 'b1', '2026-09'), "
                    "('c1', 'name', '王小明', 'police', 'b1', '2026-09', 'b1', '2026-09')"
                )
            )
        upgrade(SERVICE.migrations_dir, url, "head")
        settings = RegistrySettings()
        cipher = FieldCipher(
            keys_from_setting(settings.pii_keys),
            active_key_id=settings.pii_active_key_id,
            algorithm=settings.pii_algorithm,
        )
        blind = BlindIndex(base64.b64decode(settings.blind_index_key))
        with engine.begin() as c:
            children = dict(c.execute(text("SELECT id, guardian_phone FROM children")).all())
            rows = c.execute(
                text(
                    "SELECT row_number, guardian_phone, guardian_phone_blind FROM feed_rows ORDER BY row_number"
                )
            ).all()
            attrs = c.execute(
                text("SELECT attribute, value, value_cipher FROM child_attributes ORDER BY department")
            ).all()
    finally:
        engine.dispose()
    assert children["c2"] is None
    assert cipher.decrypt(children["c1"], associated_data=PHONE_AAD) == "13800000001"
    assert [(n, cipher.decrypt(p, associated_data=PHONE_AAD), b) for n, p, b in rows] == [
        (2, "13800000001", blind.of("13800000001")),
        (3, "06321234567", blind.of("06321234567")),
    ]
    phones = {(v, cipher.decrypt(t, associated_data=PHONE_AAD)) for a, v, t in attrs if a == "guardian_phone"}
    assert phones == {
        (blind.of("13800000001"), "13800000001"),
        (blind.of("13900000002"), "13900000002"),
    }
    assert ("name", "王小明", None) in attrs
    stored = " ".join(str(x) for x in [*children.values(), *rows, *attrs])
    assert "13800000001" not in stored and "13900000002" not in stored and "06321234567" not in stored
    # Downgrading does not bring plaintext back: the phones are removed with the token columns.
    command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0002")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as c:
            assert c.execute(text("SELECT guardian_phone FROM children WHERE id = 'c1'")).scalar() is None
            assert (
                c.execute(text("SELECT COUNT(*) FROM feed_rows WHERE guardian_phone IS NOT NULL")).scalar()
                == 0
            )
            left = c.execute(text("SELECT attribute FROM child_attributes")).scalars().all()
    finally:
        engine.dispose()
    assert left == ["name"]


def test_children_pages_keep_the_room_the_model_declares(baoxue_infra):
    """PostgreSQL: the head's ``children`` table has the fillfactor the model declares (Alembic's
    comparison does not look at storage parameters), and downgrading past 0006 restores the default."""
    url = baoxue_infra.database_url("registry_fillfactor")
    upgrade(SERVICE.migrations_dir, url)
    engine = create_engine(sync_url(url))

    def options() -> list[str] | None:
        with engine.connect() as c:
            return c.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'children'")).scalar()

    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only: SQLite has no storage parameters")
        declared = Child.__table__.dialect_options["postgresql"]["with"]  # type: ignore[attr-defined]
        assert options() == [f"{k}={v}" for k, v in declared.items()] == ["fillfactor=50"]
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0005")
        assert options() is None
    finally:
        engine.dispose()


def test_review_item_kinds_hold_every_review_reason_code_and_downgrade(baoxue_infra):
    """0007 widens ``review_items.kind`` to the longest review reason code; downgrading removes the items
    whose kind no longer fits and narrows the column again."""
    url = baoxue_infra.database_url("registry_review_kinds")
    upgrade(SERVICE.migrations_dir, url)
    engine = create_engine(sync_url(url))
    now = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)

    def kind_width() -> int | None:
        with engine.connect() as c:
            column = next(col for col in inspect(c).get_columns("review_items") if col["name"] == "kind")
        return column["type"].length  # type: ignore[no-any-return]

    try:
        assert kind_width() == 40
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO review_items (kind, status, child_id, detail, created_at) VALUES "
                    "('id_address_code_not_in_use', 'open', 'c1', '{}', :now), "
                    "('address_unmatched', 'open', 'c2', '{}', :now)"
                ),
                {"now": now},
            )
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0006")
        assert kind_width() == 20
        with engine.connect() as c:
            assert c.execute(text("SELECT child_id FROM review_items")).scalars().all() == ["c2"]
        upgrade(SERVICE.migrations_dir, url)
        assert kind_width() == 40
    finally:
        engine.dispose()


def test_merged_records_are_pointed_at_the_end_of_their_chain_and_announced(baoxue_infra):
    """0008: records merged before merges flattened chains name the record they were merged into, which
    may be merged too (A → B → C). After the upgrade every merged record names the end of its chain; each
    one re-pointed that the consumers know (version above 0) is at its next version and announced in the
    outbox (ChildStatusChanged, duplicate to duplicate, merged_into the end) in the library's envelope.
    Downgrading leaves the pointers as they are."""
    url = baoxue_infra.database_url("registry_merge_chains")
    upgrade(SERVICE.migrations_dir, url, "0007")
    engine = create_engine(sync_url(url))
    now = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    # (id, merged_into, version): D → A → B → C; Z (never announced) → B; X → Y already flat; P ⇄ Q a
    # cycle (no merge makes one: left as it is, and the upgrade still ends).
    records = [
        ("A", "B", 3),
        ("B", "C", 2),
        ("C", None, 5),
        ("D", "A", 4),
        ("Z", "B", 0),
        ("X", "Y", 2),
        ("Y", None, 2),
        ("P", "Q", 1),
        ("Q", "P", 1),
    ]
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO children (id, district, hukou_town, hukou_school_district, categories, "
                    "sources, status, merged_into, needs_review, version, created_at, updated_at) VALUES "
                    "(:id, '370406', '370406101', '37040610101', ',', ',', :status, :into, :no, :v, :now, :now)"
                ),
                [
                    {"id": i, "into": into, "v": v, "status": "duplicate" if into else "active", "no": False}
                    | {"now": now}
                    for i, into, v in records
                ],
            )
        upgrade(SERVICE.migrations_dir, url, "0008")
        with engine.begin() as c:
            after = {
                i: (into, v)
                for i, into, v in c.execute(text("SELECT id, merged_into, version FROM children"))
            }
            outbox = c.execute(
                text("SELECT aggregate_id, subject, event_type, envelope, published_at, attempts FROM outbox")
            ).all()
        command.downgrade(alembic_config(SERVICE.migrations_dir, url), "0007")
        with engine.begin() as c:
            downgraded = dict(c.execute(text("SELECT id, merged_into FROM children")).all())
    finally:
        engine.dispose()
    assert after == {
        "A": ("C", 4),
        "B": ("C", 2),
        "C": (None, 5),
        "D": ("C", 5),
        "Z": ("C", 0),
        "X": ("Y", 2),
        "Y": (None, 2),
        "P": ("Q", 1),
        "Q": ("P", 1),
    }
    assert sorted(r[0] for r in outbox) == ["A", "D"]
    for child, subject, event_type, text_, published_at, attempts in outbox:
        envelope = Envelope.model_validate_json(text_)
        assert (subject, event_type) == ("registry.child.status_changed", ChildStatusChanged.event_type())
        assert (envelope.type, envelope.subject, envelope.source) == (event_type, child, "/baoxue/registry")
        assert envelope.sequence == after[child][1] and (published_at, attempts) == (None, 0)
        data = ChildStatusChanged.model_validate(envelope.data)
        assert (data.child_id, data.status, data.previous_status) == (child, "duplicate", "duplicate")
        assert (data.merged_into, data.effective_date) == ("C", dt.date.today())
        assert (data.hukou_town, data.hukou_school_district) == ("370406101", "37040610101")
    assert downgraded == {i: into for i, (into, _v) in after.items()}
