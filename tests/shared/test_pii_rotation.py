"""Rotating the field-encryption key re-encrypts stored values and keeps every value readable."""

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from baoxue.db import Database, sync_url
from baoxue.pii.crypto import FieldCipher, PiiDecryptError
from baoxue.pii.rotation import ColumnRotation, EncryptedColumn, count_stale, rotate_all, rotate_column

OLD, NEW = b"0123456789abcdef", b"fedcba9876543210"


def _database(baoxue_infra, name: str, *tables_of) -> tuple[Database, MetaData]:
    metadata = MetaData()
    for make in tables_of:
        make(metadata)
    url = baoxue_infra.database_url(name)
    engine = create_engine(sync_url(url))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()
    return Database(url), metadata


def _people(metadata: MetaData) -> Table:
    return Table(
        "people", metadata, Column("id", Integer, primary_key=True), Column("id_number_enc", String(200))
    )


def _rows(metadata: MetaData) -> Table:
    """Composite key (batch, row) with a per-row associated data, like a staged feed row."""
    return Table(
        "staged_rows",
        metadata,
        Column("batch_id", String(36), primary_key=True),
        Column("row_number", Integer, primary_key=True, autoincrement=False),
        Column("phone", String(300)),
        Column("raw", String(300)),
    )


async def test_rotation_moves_every_value_to_the_active_key(baoxue_infra):
    db, metadata = _database(baoxue_infra, "rotation", _people)
    people = metadata.tables["people"]
    old = FieldCipher({"k1": OLD}, active_key_id="k1")
    values = [f"37040620150101{i:03d}X" for i in range(25)]
    async with db.transaction() as s:
        await s.execute(
            insert(people), [{"id": i, "id_number_enc": old.encrypt(v)} for i, v in enumerate(values)]
        )
        await s.execute(insert(people).values(id=99, id_number_enc=None))
    rotated = FieldCipher({"k1": OLD, "k2": NEW}, active_key_id="k2")
    target = EncryptedColumn(people, "id_number_enc")
    assert await count_stale(db, rotated, target) == 25
    first = await rotate_column(db, rotated, target, batch=7)
    assert (first.rewritten, first.failed, first.batches) == (25, 0, 4)
    assert (await rotate_column(db, rotated, target, batch=7)).rewritten == 0
    assert await count_stale(db, rotated, target) == 0
    async with db.transaction() as s:
        tokens = (
            (await s.execute(select(people.c.id_number_enc).where(people.c.id < 99).order_by(people.c.id)))
            .scalars()
            .all()
        )
    assert all(not rotated.needs_rotation(t) for t in tokens)
    new_only = FieldCipher({"k2": NEW}, active_key_id="k2")  # the old key can now be retired
    assert [new_only.decrypt(t) for t in tokens] == values
    await db.dispose()


async def test_composite_key_and_row_dependent_associated_data(baoxue_infra):
    db, metadata = _database(baoxue_infra, "rotation_composite", _rows)
    rows = metadata.tables["staged_rows"]
    old = FieldCipher({"k1": OLD}, active_key_id="k1")

    def aad(row) -> bytes:
        return f"staged_rows:{row['batch_id']}:{row['row_number']}".encode()

    data = [
        (batch, n, f"1391234{batch[-1]}{n:03d}", f"raw {batch} {n}")
        for batch in ("b-2", "b-1", "b-3")  # inserted out of key order
        for n in (3, 1, 2, 10, 11)
    ]
    async with db.transaction() as s:
        await s.execute(
            insert(rows),
            [
                {
                    "batch_id": b,
                    "row_number": n,
                    "phone": old.encrypt(phone, associated_data=aad({"batch_id": b, "row_number": n})),
                    "raw": old.encrypt(raw, associated_data=b"staged.raw") if n != 2 else None,
                }
                for b, n, phone, raw in data
            ],
        )
    new = FieldCipher({"k1": OLD, "k2": NEW}, active_key_id="k2")
    columns = [
        EncryptedColumn(rows, "phone", key=("batch_id", "row_number"), associated_data=aad),
        EncryptedColumn(rows, "raw", key=("batch_id", "row_number"), associated_data="staged.raw"),
    ]
    seen: list[tuple[str, int]] = []
    reports = await rotate_all(
        db, new, columns, batch=2, progress=lambda r: seen.append((r.column, r.rewritten))
    )
    assert {name: (r.rewritten, r.failed) for name, r in reports.items()} == {
        "staged_rows.phone": (15, 0),
        "staged_rows.raw": (12, 0),
    }
    # Progress after every batch, counts rising to the total: 15 rows in batches of 2 → 8 reports.
    assert [n for c, n in seen if c == "staged_rows.phone"] == [2, 4, 6, 8, 10, 12, 14, 15]
    async with db.transaction() as s:
        stored = (await s.execute(select(rows))).mappings().all()
    new_only = FieldCipher({"k2": NEW}, active_key_id="k2")
    by_key = {(b, n): (phone, raw) for b, n, phone, raw in data}
    for row in stored:
        phone, raw = by_key[(row["batch_id"], row["row_number"])]
        assert new_only.decrypt(row["phone"], associated_data=aad(row)) == phone
        if row["row_number"] == 2:
            assert row["raw"] is None
        else:
            assert new_only.decrypt(row["raw"], associated_data=b"staged.raw") == raw
        with pytest.raises(PiiDecryptError):  # the associated data was kept, not dropped
            new_only.decrypt(row["phone"])
    await db.dispose()


class _Interrupted(Exception):
    pass


async def test_an_interrupted_run_continues_where_it_stopped(baoxue_infra):
    db, metadata = _database(baoxue_infra, "rotation_interrupted", _people)
    people = metadata.tables["people"]
    old = FieldCipher({"k1": OLD}, active_key_id="k1")
    async with db.transaction() as s:
        await s.execute(insert(people), [{"id": i, "id_number_enc": old.encrypt(f"v{i}")} for i in range(50)])
    new = FieldCipher({"k1": OLD, "k2": NEW}, active_key_id="k2")
    target = EncryptedColumn(people, "id_number_enc")

    def stop_after_two(report: ColumnRotation) -> None:
        if report.batches == 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        await rotate_column(db, new, target, batch=10, progress=stop_after_two)
    assert await count_stale(db, new, target) == 30  # two batches committed
    async with db.transaction() as s:
        before = dict((await s.execute(select(people.c.id, people.c.id_number_enc))).all())
    again = await rotate_column(db, new, target, batch=10)
    assert again.rewritten == 30  # only what was left
    async with db.transaction() as s:
        after = dict((await s.execute(select(people.c.id, people.c.id_number_enc))).all())
    assert all(after[i] == before[i] for i in range(20))  # the first run's tokens were not touched again
    assert [new.decrypt(after[i]) for i in range(50)] == [f"v{i}" for i in range(50)]
    assert (await rotate_column(db, new, target, batch=10)).rewritten == 0
    await db.dispose()


async def test_undecryptable_values_are_counted_and_left_alone(baoxue_infra):
    db, metadata = _database(baoxue_infra, "rotation_failures", _people)
    people = metadata.tables["people"]
    lost = FieldCipher({"k0": b"lostlostlostlost"}, active_key_id="k0")
    old = FieldCipher({"k1": OLD}, active_key_id="k1")
    async with db.transaction() as s:
        await s.execute(
            insert(people),
            [
                {"id": 1, "id_number_enc": old.encrypt("a")},
                {"id": 2, "id_number_enc": lost.encrypt("b")},  # its key is no longer configured
                {"id": 3, "id_number_enc": old.encrypt("c", associated_data=b"other")},  # wrong AAD
                {"id": 4, "id_number_enc": "not a token"},
                {"id": 5, "id_number_enc": old.encrypt("e")},
            ],
        )
    new = FieldCipher({"k1": OLD, "k2": NEW}, active_key_id="k2")
    target = EncryptedColumn(people, "id_number_enc")
    report = await rotate_column(db, new, target, batch=2)
    assert (report.rewritten, report.failed, report.failed_keys) == (2, 3, [(2,), (3,), (4,)])
    async with db.transaction() as s:
        stored = dict((await s.execute(select(people.c.id, people.c.id_number_enc))).all())
    assert stored[4] == "not a token" and lost.decrypt(stored[2]) == "b"
    assert [new.decrypt(stored[i]) for i in (1, 5)] == ["a", "e"]
    await db.dispose()


async def test_a_new_algorithm_counts_as_stale_and_key_ids_compare_exactly(baoxue_infra):
    db, metadata = _database(baoxue_infra, "rotation_algorithm", _people)
    people = metadata.tables["people"]
    upper = FieldCipher({"K2": NEW}, active_key_id="K2")  # differs from "k2" only in case
    aes = FieldCipher({"k2": NEW}, active_key_id="k2", algorithm="aes-gcm")
    async with db.transaction() as s:
        await s.execute(
            insert(people),
            [{"id": 1, "id_number_enc": upper.encrypt("a")}, {"id": 2, "id_number_enc": aes.encrypt("b")}],
        )
    sm4 = FieldCipher({"K2": NEW, "k2": NEW}, active_key_id="k2")
    report = await rotate_column(db, sm4, EncryptedColumn(people, "id_number_enc"))
    assert report.rewritten == 2
    async with db.transaction() as s:
        stored = dict((await s.execute(select(people.c.id, people.c.id_number_enc))).all())
    assert all(t.startswith("s4.k2.") for t in stored.values())
    assert [sm4.decrypt(stored[i]) for i in (1, 2)] == ["a", "b"]
    await db.dispose()


def test_declarations_are_checked():
    metadata = MetaData()
    people = _people(metadata)
    with pytest.raises(ValueError, match="no column"):
        EncryptedColumn(people, "phone_enc")
    with pytest.raises(ValueError, match="no column"):
        EncryptedColumn(people, "id_number_enc", key=("id", "row"))
    assert EncryptedColumn(people, "id_number_enc", associated_data="x").aad_for({}) == b"x"
