"""Rotating the field-encryption key re-encrypts stored values and keeps every value readable."""

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from baoxue.db import Database, sync_url
from baoxue.pii.crypto import FieldCipher
from baoxue.pii.rotation import EncryptedColumn, rotate_column

OLD, NEW = b"0123456789abcdef", b"fedcba9876543210"


async def test_rotation_moves_every_value_to_the_active_key(baoxue_infra):
    metadata = MetaData()
    people = Table(
        "people", metadata, Column("id", Integer, primary_key=True), Column("id_number_enc", String(200))
    )
    url = baoxue_infra.database_url("rotation")
    engine = create_engine(sync_url(url))
    metadata.create_all(engine)
    engine.dispose()
    db = Database(url)
    old = FieldCipher({"k1": OLD}, active_key_id="k1")
    values = [f"37040620150101{i:03d}X" for i in range(25)]
    async with db.transaction() as s:
        await s.execute(
            insert(people), [{"id": i, "id_number_enc": old.encrypt(v)} for i, v in enumerate(values)]
        )
        await s.execute(insert(people).values(id=99, id_number_enc=None))
    rotated = FieldCipher({"k1": OLD, "k2": NEW}, active_key_id="k2")
    target = EncryptedColumn(people, "id_number_enc")
    assert await rotate_column(db, rotated, target, batch=7) == 25
    assert await rotate_column(db, rotated, target, batch=7) == 0
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
