"""The library half of changing the blind-index key: recompute from tokens, translate copies, report the rest."""

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from baoxue.db import Database, sync_url
from baoxue.pii.crypto import BlindIndex, FieldCipher
from baoxue.pii.reindex import BlindIndexColumn, BlindIndexMap, recompute, translate
from baoxue.pii.rotation import EncryptedColumn

CIPHER = FieldCipher({"k1": b"0123456789abcdef"}, active_key_id="k1")
OLD, NEW = BlindIndex(b"old-blind-index-key"), BlindIndex(b"new-blind-index-key")


def _database(baoxue_infra, name: str) -> tuple[Database, Table, Table]:
    metadata = MetaData()
    people = Table(
        "people",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("id_enc", String(200)),
        Column("id_index", String(80)),
        # like the registry's provenance: a blind index where value_enc is set, a plain value elsewhere
        Column("value", String(80)),
        Column("value_enc", String(200)),
    )
    copies = Table(
        "copies", metadata, Column("id", Integer, primary_key=True), Column("id_index", String(80))
    )
    engine = create_engine(sync_url(baoxue_infra.database_url(name)))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()
    return Database(baoxue_infra.database_url(name)), people, copies


async def _column(db: Database, column) -> list:  # type: ignore[no-untyped-def]
    async with db.transaction() as s:
        return list((await s.execute(select(column).order_by(column.table.c.id))).scalars())


def _row(id: int, id_enc=None, id_index=None, value=None, value_enc=None) -> dict:  # type: ignore[no-untyped-def]
    return {"id": id, "id_enc": id_enc, "id_index": id_index, "value": value, "value_enc": value_enc}


async def test_recompute_translate_and_what_is_left(baoxue_infra):
    db, people, copies = _database(baoxue_infra, "reindex")
    ids = [f"37040620150101{i:03d}X" for i in range(7)]
    async with db.transaction() as s:
        await s.execute(
            insert(people),
            [_row(i, CIPHER.encrypt(v), OLD.of(v)) for i, v in enumerate(ids)]
            + [
                # a row whose stored index is the value's under neither key: failed, left as it is
                _row(7, CIPHER.encrypt("370406201501019999"), OLD.of("another")),
                # a token no key here decrypts: failed
                _row(8, FieldCipher({"k9": b"9" * 16}, active_key_id="k9").encrypt("x"), "0" * 64),
                # an index without its token (a case opened from an event): translated like a copy
                _row(9, None, OLD.of(ids[0])),
                # the plain value of another attribute that happens to look like an old index: not touched
                _row(10, value=OLD.of(ids[1])),
                _row(11, value=OLD.of(ids[2]), value_enc=CIPHER.encrypt(ids[2])),
            ],
        )
        await s.execute(
            insert(copies),
            [{"id": 1, "id_index": OLD.of(ids[3])}, {"id": 2, "id_index": OLD.of("unknown here")}],
        )
    id_source, value_source = EncryptedColumn(people, "id_enc"), EncryptedColumn(people, "value_enc")
    columns = [
        BlindIndexColumn(people, "id_index", source=id_source),
        BlindIndexColumn(people, "value", source=value_source, only_rows_with_source=True),
        BlindIndexColumn(copies, "id_index"),
    ]
    index_map = BlindIndexMap(OLD, NEW)
    seen: list[int] = []
    reports = {
        c.name: await recompute(
            db, CIPHER, c, index_map, batch=3, progress=lambda r: seen.append(r.recomputed)
        )
        for c in columns[:2]
    }
    assert seen == [3, 6, 7, 1]  # a report per read batch: rows 0–8 of people.id_index by 3, then row 11
    assert (reports["people.id_index"].recomputed, reports["people.id_index"].failed) == (7, 2)
    assert reports["people.id_index"].failed_keys == [(7,), (8,)]
    assert len(index_map) == 8  # row 7's value has its pair too (made from the plaintext, right either way)

    await translate(db, columns, index_map, reports)
    by_name = {name: (r.rewritten, r.current, r.unknown) for name, r in reports.items()}
    assert by_name == {
        "people.id_index": (8, 8, 2),  # rows 0–6 and 9; rows 7 and 8 left (no pair gives their values)
        "people.value": (1, 1, 0),  # row 11 only; row 10 is not a blind-index row
        "copies.id_index": (1, 1, 1),
    }
    assert await _column(db, people.c.id_index) == [
        *(NEW.of(v) for v in ids),
        OLD.of("another"),
        "0" * 64,
        NEW.of(ids[0]),
        None,
        None,
    ]
    assert (await _column(db, people.c.value))[-2:] == [OLD.of(ids[1]), NEW.of(ids[2])]
    assert await _column(db, copies.c.id_index) == [NEW.of(ids[3]), OLD.of("unknown here")]

    # Again (an interrupted run finished): nothing more changes.
    again: dict = {}
    await translate(db, columns, index_map, again)
    assert {name: r.rewritten for name, r in again.items()} == dict.fromkeys(by_name, 0)
    # A new map made after the change, from the same tokens, still gives the pairs (stored values are the
    # new key's now, which recompute accepts).
    later = BlindIndexMap(OLD, NEW)
    assert (await recompute(db, CIPHER, columns[0], later)).failed == 2
    assert later.pairs == index_map.pairs
    await db.dispose()


def test_declarations_are_checked():
    metadata = MetaData()
    t = Table(
        "t", metadata, Column("id", Integer, primary_key=True), Column("ix", String), Column("enc", String)
    )
    other = Table("o", metadata, Column("id", Integer, primary_key=True), Column("enc", String))
    with pytest.raises(ValueError, match="no column 'nope'"):
        BlindIndexColumn(t, "nope")
    with pytest.raises(ValueError, match="same table"):
        BlindIndexColumn(t, "ix", source=EncryptedColumn(other, "enc"))
    with pytest.raises(ValueError, match="needs a source"):
        BlindIndexColumn(t, "ix", only_rows_with_source=True)
    with pytest.raises(ValueError, match="current one"):
        BlindIndexMap(OLD, BlindIndex(b"old-blind-index-key"))
