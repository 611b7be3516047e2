# ruff: noqa: S608  (the SQL text is assembled from constants only; every value is a bound parameter)
"""Set-based merge of a staged feed batch into the child records (SQL over ``feed_rows``, no ORM objects).

Every statement works on the whole batch at once and runs unchanged on SQLite and PostgreSQL. The
steps run inside the caller's transaction, in this order: resolve rows to existing children by blind
index, register new children, update contact values, record provenance, open conflicts, confirm and
lapse category flags.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import UTCDateTime, utcnow
from baoxue.pii.citizen_id import IdReason
from registry.children.bulk import is_postgresql
from registry.feeds.columns import CATEGORIES
from registry.feeds.reasons import REASONS

# Row reason codes that open a review item of their code in ``open_conflicts``: every code of severity
# "review" (reasons.py), but ``id_collision``, which opens its item in ``detach_collisions``, the only step
# that still knows the child holding the ID number.
ROW_REVIEW_CODES = tuple(
    code for code, (severity, _, _) in REASONS.items() if severity == "review" and code != "id_collision"
)
# The values of a row that a review reason is about (columns of feed_rows): a decided item of the reason
# holds for a later row of the same child with the same values (``open_conflicts``). A reason not listed
# compares the row's identity values.
ROW_REVIEW_VALUES: dict[str, tuple[str, ...]] = {
    IdReason.BIRTH_DATE_MISMATCH: ("id_blind", "birth_date"),
    IdReason.SEX_MISMATCH: ("id_blind", "sex"),
    IdReason.ADDRESS_CODE_UNKNOWN: ("id_blind",),
    IdReason.ADDRESS_CODE_NOT_IN_USE: ("id_blind",),
    "address_unmatched": ("hukou_address",),
}
_ROW_IDENTITY_VALUES = ("id_blind", "name", "sex", "birth_date", "hukou_address")
# Identity attributes keep their first value; a differing assertion is a conflict for review.
IDENTITY_ATTRIBUTES = ("name", "sex", "birth_date", "hukou_village")
# Every attribute whose provenance is kept (column of feed_rows → attribute name).
PROVENANCE = {
    "name": "name",
    "sex": "sex",
    "birth_date": "CAST(birth_date AS VARCHAR(10))",
    "hukou_address": "hukou_address",
    "hukou_village": "hukou_village",
    "current_address": "current_address",
    "guardian_name": "guardian_name",
    "guardian_phone": "guardian_phone_blind",
    "disability_type": "disability_type",
    "disability_grade": "disability_grade",
}
# Encrypted attributes: provenance keeps their blind index as ``value`` (equal values compare equal) and
# their token in ``value_cipher`` (column of feed_rows → attribute name).
ENCRYPTED = {"guardian_phone": "guardian_phone"}
# Contact attributes whose departments must agree: two departments' latest values differing is a conflict
# (one department changing its value over the periods is an update, not a conflict).
CONTACT_CONFLICT_ATTRIBUTES = ("guardian_phone",)
ACCEPTED = "batch_id = :b AND outcome = 'accepted'"


def _V(name: str) -> str:
    """A parameter used as a value in a SELECT list: typed, so PostgreSQL does not have to guess."""
    return f"CAST(:{name} AS VARCHAR)"


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _now_param(sql: str) -> Any:
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime()))


async def resolve_by_id(session: AsyncSession, batch_id: str) -> None:
    """Rows whose ID number is already known point at that child (or the record it was merged into)."""
    await session.execute(
        text(
            "UPDATE feed_rows SET link = 'id', child_id = (SELECT COALESCE(c.merged_into, c.id) FROM children c "
            "WHERE c.id_blind = feed_rows.id_blind) "
            f"WHERE {ACCEPTED} AND id_blind IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM children c WHERE c.id_blind = feed_rows.id_blind)"
        ),
        {"b": batch_id},
    )


async def detach_collisions(session: AsyncSession, batch_id: str) -> int:
    """Rows whose ID number belongs to a child with a different name *and* guardian are not that child.

    Such a row gets ``id_collision`` (for review) and is treated like a row without a usable ID number:
    it becomes a provisional record and goes to linkage. The ID number stays encrypted on the row.

    Its review item opens here, while the row still points at the child holding the ID number: the item's
    ``child_id`` is the provisional record the row is about to become (``candidate_id``, which
    ``register_new`` gives the row), ``other_child_id`` the holder (the record that remains after merges).

    A decided collision holds for the same row (:data:`_COLLISION_DECIDED`): the row is the record of that
    item again (``link = 'decided'``: no new provisional record, no linkage, no new item). Accepted, that
    record was merged into the holder, so the row's flags reach the holder as the first row's did;
    rejected, it is the other child's record.
    """
    collides = (
        f"{ACCEPTED} AND link = 'id' AND EXISTS (SELECT 1 FROM children c WHERE c.id_blind = feed_rows.id_blind "
        "AND c.name_pinyin <> feed_rows.name_pinyin "
        "AND COALESCE(c.guardian_name, '') <> COALESCE(feed_rows.guardian_name, ''))"
    )
    await session.execute(
        _now_param(
            "INSERT INTO review_items (kind, status, child_id, other_child_id, batch_id, detail, hukou_town, "
            f"created_at) SELECT 'id_collision', 'open', candidate_id, child_id, {_V('b')}, '{{}}', hukou_town, "
            f":now FROM feed_rows WHERE {collides} AND NOT EXISTS ({_COLLISION_DECIDED})"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    result = await session.execute(
        text(
            f"UPDATE feed_rows SET child_id = ({_COLLISION_DECIDED}), "
            f"link = CASE WHEN EXISTS ({_COLLISION_DECIDED}) THEN 'decided' ELSE NULL END, id_blind = NULL, "
            "reasons = CASE WHEN reasons = '' THEN 'id_collision' ELSE reasons || ',id_collision' END "
            f"WHERE {collides}"
        ),
        {"b": batch_id},
    )
    return _rowcount(result)


_COLLISION_DECIDED = (
    "SELECT ri.child_id FROM review_items ri JOIN feed_rows d ON d.batch_id = ri.batch_id "
    "AND d.child_id = ri.child_id JOIN children h ON h.id = ri.other_child_id "
    "WHERE ri.kind = 'id_collision' AND ri.status IN ('accepted', 'rejected') "
    "AND COALESCE(h.merged_into, h.id) = feed_rows.child_id AND d.name = feed_rows.name "
    "AND COALESCE(d.guardian_name, '') = COALESCE(feed_rows.guardian_name, '') "
    "ORDER BY ri.id DESC LIMIT 1"
)
"""The record of a decided ``id_collision`` item whose row had the values of row ``feed_rows``: the same
name and guardian, and an ID number held by the same child (``feed_rows.child_id``, the record that
remains for it, before the row is detached). The items hold no values; the rows that opened them are
kept (detached, their ``child_id`` is the item's record)."""


async def register_new(session: AsyncSession, batch_id: str, *, district: str, with_id: bool) -> int:
    """Insert a child for every accepted row still without one (``with_id``: rows with/without an ID number).

    New children start at version 0: the snapshot step announces them (ChildRegistered) and sets 1.
    """
    id_clause = "id_blind IS NOT NULL" if with_id else "id_blind IS NULL"
    where = f"{ACCEPTED} AND child_id IS NULL AND {id_clause}"
    result = await session.execute(
        _now_param(
            "INSERT INTO children (id, id_blind, id_cipher, name, name_pinyin, sex, birth_date, district, "
            "hukou_address, hukou_town, hukou_village, hukou_school_district, current_address, guardian_name, "
            "guardian_phone, disability_type, disability_grade, categories, sources, status, needs_review, "
            "version, first_batch_id, created_at, updated_at) "
            "SELECT candidate_id, id_blind, id_cipher, name, name_pinyin, sex, COALESCE(id_birth_date, birth_date), "
            f"{_V('district')}, hukou_address, hukou_town, hukou_village, hukou_school_district, current_address, "
            "guardian_name, guardian_phone, disability_type, disability_grade, ',', ',', 'active', :no, 0, "
            f"batch_id, :now, :now FROM feed_rows WHERE {where}"
        ),
        {"b": batch_id, "district": district, "now": utcnow(), "no": False},
    )
    await session.execute(
        _now_param(
            "INSERT INTO child_history (child_id, kind, at, batch_id, detail) "
            f"SELECT candidate_id, 'registered', :now, batch_id, '{{}}' FROM feed_rows WHERE {where}"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    await session.execute(
        text(f"UPDATE feed_rows SET child_id = candidate_id, link = 'new' WHERE {where}"), {"b": batch_id}
    )
    return _rowcount(result)


async def update_contact_values(
    session: AsyncSession, batch_id: str, *, department: str, period: str
) -> None:
    """Contact values (current address, guardian) follow the latest period asserted; identity values only
    fill gaps.

    A batch sets a contact value unless an earlier batch (any department's) asserted a value of that
    attribute for a later period: a late or repeated delivery of an older period leaves the newer value on
    the record, its own is kept in provenance only (``record_provenance``, which runs after this step, so
    ``child_attributes`` holds the earlier batches' assertions here). Within one period the batch merged
    last wins. For the rows that found their record by ID number, or by a decided ID collision
    (``detach_collisions``).
    """
    latest = {
        "current_address": "current_address",
        "guardian_name": "guardian_name",
        "guardian_phone": "guardian_phone",
    }
    fill = {
        "name": "name",
        "name_pinyin": "name_pinyin",
        "sex": "sex",
        "hukou_address": "hukou_address",
        "hukou_town": "hukou_town",
        "hukou_village": "hukou_village",
        "hukou_school_district": "hukou_school_district",
    }
    if department == "dpf":
        latest |= {"disability_type": "disability_type", "disability_grade": "disability_grade"}
    sets = [
        f"{col} = CASE WHEN EXISTS (SELECT 1 FROM child_attributes a WHERE a.child_id = children.id "
        f"AND a.attribute = '{col}' AND a.last_period > :p) THEN {col} ELSE "
        f"COALESCE((SELECT MAX(r.{src}) FROM feed_rows r WHERE r.batch_id = :b AND r.outcome = 'accepted' "
        f"AND r.child_id = children.id), {col}) END"
        for col, src in latest.items()
    ] + [
        f"{col} = COALESCE({col}, (SELECT MAX(r.{src}) FROM feed_rows r WHERE r.batch_id = :b "
        f"AND r.outcome = 'accepted' AND r.child_id = children.id))"
        for col, src in fill.items()
    ]
    await session.execute(
        text(
            f"UPDATE children SET {', '.join(sets)} WHERE id IN "
            "(SELECT child_id FROM feed_rows WHERE batch_id = :b AND outcome = 'accepted' "
            "AND link IN ('id', 'decided'))"
        ),
        {"b": batch_id, "p": period},
    )


def _constants(values: Any) -> str:
    """``(VALUES ('a'), ('b'), …)`` of code constants (never user input); its column is ``column1``."""
    return "(VALUES " + ", ".join(f"('{v}')" for v in values) + ")"


async def record_provenance(session: AsyncSession, batch_id: str, *, department: str, period: str) -> None:
    """One assertion row per (child, attribute, department, value): first and last batch and period.

    One statement for every attribute: the batch's rows × the attribute names, each row's value of that
    attribute picked by a CASE, then one upsert.
    """
    value = (
        "CASE a.column1 "
        + " ".join(f"WHEN '{attr}' THEN {expr}" for attr, expr in PROVENANCE.items())
        + " END"
    )
    cipher = (
        "CASE a.column1 "
        + " ".join(f"WHEN '{attr}' THEN {expr}" for attr, expr in ENCRYPTED.items())
        + " ELSE NULL END"
    )
    # Grouped, not DISTINCT: two rows of one child with the same phone carry different tokens (random
    # nonces) and must still give one row per conflict key (PostgreSQL refuses to upsert a row twice).
    await session.execute(
        text(
            "INSERT INTO child_attributes (child_id, attribute, value, value_cipher, department, "
            "first_batch_id, first_period, last_batch_id, last_period) "
            f"SELECT child_id, attribute, value, MAX(value_cipher), {_V('dept')}, {_V('b')}, {_V('p')}, "
            f"{_V('b')}, {_V('p')} "
            f"FROM (SELECT child_id, a.column1 AS attribute, {value} AS value, {cipher} AS value_cipher "
            f"FROM feed_rows CROSS JOIN {_constants(PROVENANCE)} AS a "
            f"WHERE {ACCEPTED} AND child_id IS NOT NULL) AS asserted WHERE value IS NOT NULL "
            "GROUP BY child_id, attribute, value "
            "ON CONFLICT (child_id, attribute, department, value) DO UPDATE SET "
            "last_batch_id = excluded.last_batch_id, last_period = CASE WHEN excluded.last_period > "
            "child_attributes.last_period THEN excluded.last_period ELSE child_attributes.last_period END, "
            "value_cipher = COALESCE(child_attributes.value_cipher, excluded.value_cipher)"
        ),
        {"b": batch_id, "dept": department, "p": period},
    )


_MAY_DISAGREE = (
    "(SELECT child_id FROM feed_rows WHERE batch_id = :b AND child_id IS NOT NULL GROUP BY child_id "
    "HAVING COUNT(*) > 1 OR MAX(CASE WHEN link = 'new' THEN 0 ELSE 1 END) = 1)"
)
"""The children of batch ``:b`` whose assertions may disagree: those with more than one row in the batch,
and those the batch did not register (``register_new`` marks the one row it registers a child from
``link = 'new'``; every other row with a child found it by ID number or is unmarked)."""


_CONFLICT_ITEM_NEEDED = (
    "NOT EXISTS (SELECT 1 FROM review_items ri WHERE ri.child_id = a.child_id AND ri.attribute = a.attribute "
    "AND ri.kind = 'conflict' AND ri.status = 'open') "
    "AND (NOT EXISTS (SELECT 1 FROM review_items ri WHERE ri.child_id = a.child_id "
    "AND ri.attribute = a.attribute AND ri.kind = 'conflict' AND ri.status IN ('accepted', 'rejected')) "
    "OR EXISTS (SELECT 1 FROM child_attributes n WHERE n.child_id = a.child_id AND n.attribute = a.attribute "
    "AND n.first_batch_id = :b AND NOT EXISTS (SELECT 1 FROM child_attributes o WHERE o.child_id = n.child_id "
    "AND o.attribute = n.attribute AND o.value = n.value AND o.first_batch_id <> :b)))"
)
"""Whether a conflict of child ``a.child_id`` on ``a.attribute`` needs an item: none is open, and either
none was ever decided or batch ``:b`` asserts a value of it that no earlier batch did. A reviewer who
decided between values (accepted one, or rejected the item) is not asked again because later feeds
repeat them; a value never asserted before is new to decide on. Values compared as stored (blind
indexes for phones); the items hold no values."""


def _same_row_values() -> str:
    """Whether row ``d`` has the values of row ``feed_rows`` that reason ``k.column1`` is about."""
    return " OR ".join(
        f"(k.column1 = '{code}' AND "
        + " AND ".join(f"d.{c} = feed_rows.{c}" for c in ROW_REVIEW_VALUES.get(code, _ROW_IDENTITY_VALUES))
        + ")"
        for code in ROW_REVIEW_CODES
    )


_ROW_ITEM_DECIDED = (
    "EXISTS (SELECT 1 FROM review_items ri JOIN feed_rows d ON d.batch_id = ri.batch_id "
    "AND d.child_id = ri.child_id JOIN children ci ON ci.id = ri.child_id "
    "JOIN children cr ON cr.id = feed_rows.child_id "
    "WHERE ri.kind = k.column1 AND ri.status IN ('accepted', 'rejected') "
    "AND COALESCE(ci.merged_into, ci.id) = COALESCE(cr.merged_into, cr.id) AND d.outcome = 'accepted' "
    f"AND (',' || d.reasons || ',') LIKE ('%,' || k.column1 || ',%') AND ({_same_row_values()}))"
)
"""Whether an item of reason ``k.column1`` about the child of row ``feed_rows`` was decided (accepted or
rejected) for a row with the same values: the row that opened it (its batch and record) asserted what
this row asserts in the values the reason is about (:data:`ROW_REVIEW_VALUES`; ID numbers compared by
blind index). The decision holds: the department repeating its row in a later period does not ask the
reviewer again; a changed value does. "The child" is the record that remains after merges (a row without
an ID number is a new provisional record each time, linked to the same child). The items hold no values;
the rows that opened them are kept."""


async def open_conflicts(session: AsyncSession, batch_id: str) -> int:
    """A review item for every identity attribute of a touched child that now has two or more values, and
    for every contact attribute (guardian phone) on which two departments' latest values differ.

    "Two or more values" is ``MIN(value) <> MAX(value)`` (values are never NULL): the same answer as
    ``COUNT(DISTINCT value) > 1`` without a sort per group (at 100,000 children 3.1 s instead of 3.8 s).

    Only the children in :data:`_MAY_DISAGREE` are looked at: a child registered from one row of this
    batch has this row's values alone, one per attribute and all from this department, so it can hold
    no conflict of either kind. A first load is almost all such children (1M rows: the two statements
    took 50 s, looking at every child's assertions to find none)."""
    attrs = ", ".join(f"'{a}'" for a in IDENTITY_ATTRIBUTES)
    result = await session.execute(
        _now_param(
            "INSERT INTO review_items (kind, status, child_id, attribute, batch_id, detail, hukou_town, created_at) "
            f"SELECT 'conflict', 'open', a.child_id, a.attribute, {_V('b')}, '{{}}', MAX(c.hukou_town), :now "
            "FROM child_attributes a JOIN children c ON c.id = a.child_id "
            f"WHERE a.attribute IN ({attrs}) AND a.child_id IN {_MAY_DISAGREE} "
            f"GROUP BY a.child_id, a.attribute HAVING MIN(a.value) <> MAX(a.value) AND {_CONFLICT_ITEM_NEEDED}"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    contact = ", ".join(f"'{a}'" for a in CONTACT_CONFLICT_ATTRIBUTES)
    # A department's latest assertion of an attribute: no assertion of it by the same department with a
    # later last period. Values are compared as stored: blind indexes for encrypted attributes.
    latest = (
        "NOT EXISTS (SELECT 1 FROM child_attributes n WHERE n.child_id = {t}.child_id "
        "AND n.attribute = {t}.attribute AND n.department = {t}.department AND n.last_period > {t}.last_period)"
    )
    contact_result = await session.execute(
        _now_param(
            "INSERT INTO review_items (kind, status, child_id, attribute, batch_id, detail, hukou_town, created_at) "
            f"SELECT 'conflict', 'open', a.child_id, a.attribute, {_V('b')}, '{{}}', MAX(c.hukou_town), :now "
            "FROM child_attributes a JOIN child_attributes o ON o.child_id = a.child_id "
            "AND o.attribute = a.attribute AND o.department <> a.department AND o.value <> a.value "
            "JOIN children c ON c.id = a.child_id "
            f"WHERE a.attribute IN ({contact}) AND {latest.format(t='a')} AND {latest.format(t='o')} "
            f"AND a.child_id IN {_MAY_DISAGREE} AND {_CONFLICT_ITEM_NEEDED} "
            "GROUP BY a.child_id, a.attribute"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    # One statement for every code: the batch's rows with reasons × the codes each row lists; none while
    # an item of that code about the child is open (a department repeating its row adds no second one),
    # nor when one was decided for the same values (:data:`_ROW_ITEM_DECIDED`).
    await session.execute(
        _now_param(
            "INSERT INTO review_items (kind, status, child_id, batch_id, detail, hukou_town, created_at) "
            f"SELECT k.column1, 'open', child_id, {_V('b')}, '{{}}', hukou_town, :now "
            f"FROM feed_rows CROSS JOIN {_constants(ROW_REVIEW_CODES)} AS k "
            f"WHERE {ACCEPTED} AND child_id IS NOT NULL AND reasons <> '' "
            "AND (',' || reasons || ',') LIKE ('%,' || k.column1 || ',%') AND NOT EXISTS "
            "(SELECT 1 FROM review_items ri WHERE ri.child_id = feed_rows.child_id AND ri.kind = k.column1 "
            f"AND ri.status = 'open') AND NOT {_ROW_ITEM_DECIDED}"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    await session.execute(
        text(
            "UPDATE children SET needs_review = :yes WHERE id IN "
            "(SELECT child_id FROM review_items WHERE batch_id = :b AND status = 'open')"
        ),
        {"b": batch_id, "yes": True},
    )
    return _rowcount(result) + _rowcount(contact_result)


async def refresh_statistics(session: AsyncSession) -> None:
    """PostgreSQL: analyse ``children`` and ``child_attributes`` inside the merge, after provenance.

    The rows a large batch has just added are in no statistics yet: the planner would take the tables
    for as small as before and join them by index lookups (1M rows: conflicts 66 -> 53 s, snapshots
    224-230 -> 202 s, for 0.8 s of ``ANALYZE``). It holds SHARE UPDATE EXCLUSIVE on both tables until the
    merge commits: reads and writes go on; another ``ANALYZE``, a ``VACUUM`` or an index build waits.
    SQLite keeps no such statistics: nothing to do.
    """
    if is_postgresql(session):
        await session.execute(text("ANALYZE children, child_attributes"))


async def confirm_flags(session: AsyncSession, batch_id: str, *, department: str, period: str) -> None:
    """Upsert the category flags the batch asserts: new ones from this period, known ones confirmed again.

    A flag lapsed by a batch of this same period (``lapsed_period``) that this batch asserts again is
    reinstated with its ``valid_from``: the period's delivery did assert it, in a batch merged after the
    one that lapsed it (a department sending two batches each declared complete, or a part arriving after
    the completing one: :func:`lapse_flags`). Its ``flag_lapsed`` item is closed as ``undone`` with the
    batch that re-confirmed it (:func:`_close_reconfirmed_lapses`). A flag lapsed in an earlier period, or
    ended by a reviewer, starts anew from this period.

    One statement for every category: the batch's rows × the category codes each row lists. A flag goes
    to the record that remains after linkage: a row without a usable ID number whose provisional record
    was linked to a known child (the same child fed again without its ID number) confirms that child's
    flag, which would otherwise lapse while the provisional record got a new one. Only those rows look
    the record up (by primary key); a row found by ID number already points at the record that remains.
    """
    survivor = (
        "CASE WHEN id_blind IS NULL THEN COALESCE((SELECT c.merged_into FROM children c "
        "WHERE c.id = feed_rows.child_id), child_id) ELSE child_id END"
    )
    await session.execute(
        text(
            "INSERT INTO child_flags (child_id, category, department, valid_from, first_batch_id, "
            "last_confirmed, last_batch_id, status) "
            f"SELECT DISTINCT {survivor}, k.column1, {_V('dept')}, {_V('p')}, {_V('b')}, {_V('p')}, {_V('b')}, "
            "'active' "
            f"FROM feed_rows CROSS JOIN {_constants(CATEGORIES)} AS k "
            f"WHERE {ACCEPTED} AND child_id IS NOT NULL AND (',' || categories || ',') LIKE ('%,' || k.column1 || ',%') "
            "ON CONFLICT (child_id, category, department) DO UPDATE SET "
            "valid_from = CASE WHEN child_flags.status = 'ended' OR (child_flags.status = 'lapsed' "
            "AND child_flags.lapsed_period <> excluded.last_confirmed) THEN excluded.valid_from "
            "ELSE child_flags.valid_from END, status = 'active', lapsed_period = NULL, lapsed_batch_id = NULL, "
            "last_confirmed = CASE WHEN excluded.last_confirmed > child_flags.last_confirmed "
            "THEN excluded.last_confirmed ELSE child_flags.last_confirmed END, "
            "last_batch_id = excluded.last_batch_id"
        ),
        {"b": batch_id, "dept": department, "p": period},
    )
    # The flags of records merged into one whose flag this batch confirmed, lapsed by a batch of this
    # period, are reinstated with it (their lapse was one with the record that remains: lapse_flags).
    await session.execute(
        text(
            f"UPDATE child_flags SET status = 'active', lapsed_period = NULL, lapsed_batch_id = NULL, "
            f"last_confirmed = {_V('p')}, last_batch_id = {_V('b')} "
            "WHERE department = :dept AND status = 'lapsed' AND lapsed_period = :p AND EXISTS "
            "(SELECT 1 FROM children m JOIN child_flags s ON s.child_id = m.merged_into "
            "WHERE m.id = child_flags.child_id AND s.category = child_flags.category "
            "AND s.department = child_flags.department AND s.last_batch_id = :b)"
        ),
        {"b": batch_id, "dept": department, "p": period},
    )
    await _close_reconfirmed_lapses(session, batch_id, department=department, period=period)


async def _close_reconfirmed_lapses(
    session: AsyncSession, batch_id: str, *, department: str, period: str
) -> None:
    """Close the open ``flag_lapsed`` items that a batch of this department and period opened and whose
    flag this batch confirmed (reinstated by :func:`confirm_flags`): ``undone``, as items whose cause went
    away are closed elsewhere (an undo's replay), with ``{"flag": {"effect": "flag_reconfirmed",
    "batch_id": …}}`` as their evidence; the children's ``needs_review`` follows their open items."""
    detail = json.dumps({"flag": {"effect": "flag_reconfirmed", "batch_id": batch_id}})
    await session.execute(
        _now_param(
            "UPDATE review_items SET status = 'undone', decided_at = :now, detail = :detail "
            "WHERE kind = 'flag_lapsed' AND status = 'open' AND batch_id IN "
            "(SELECT id FROM feed_batches WHERE department = :dept AND period = :p AND id <> :b) "
            "AND EXISTS (SELECT 1 FROM child_flags f WHERE f.child_id = review_items.child_id "
            "AND f.category = review_items.attribute AND f.department = :dept AND f.status = 'active' "
            "AND f.last_batch_id = :b)"
        ),
        {"b": batch_id, "dept": department, "p": period, "now": utcnow(), "detail": detail},
    )
    await session.execute(
        text(
            "UPDATE children SET needs_review = EXISTS (SELECT 1 FROM review_items o "
            "WHERE o.child_id = children.id AND o.status = 'open') WHERE id IN (SELECT child_id FROM review_items "
            "WHERE kind = 'flag_lapsed' AND status = 'undone' AND detail = :detail)"
        ),
        {"detail": detail},
    )


async def lapse_flags(session: AsyncSession, batch_id: str, *, department: str, period: str) -> int:
    """Flags this department asserted for an earlier period but not in this later one lapse (listed for review).

    Only when the batch completes the department's delivery for the period (``delivery_complete``, true
    unless the department declared the batch one part of it): what is judged is the whole delivery, every
    batch of the period, as each batch (parts included) confirmed the flags it asserts (``last_confirmed``
    is this period for them) in :func:`confirm_flags`. A part lapses nothing.

    The flags of a record merged into another belong to the record that remains: the department's
    assertion of a category for that record (confirmed by this batch in :func:`confirm_flags`) confirms
    them too. A merged record's flag was asserted before its merge (civil affairs' provisional record of
    a child without its ID number, merged into the police's record of the same child once the police fed
    it); the department's later rows reach the record that remains, and the merged record's flag lapsed
    beside the one they confirmed (a false ``flag_lapsed`` item). Only the flags about to lapse are looked
    at. A lapse of the same category on a merged record and on the record that remains, by one batch, is
    one item, about the record that remains (settling it settles both: ``resolution.settle_lapsed_flag``).
    """
    await session.execute(
        text(
            f"UPDATE child_flags SET last_confirmed = {_V('p')}, last_batch_id = {_V('b')} "
            "WHERE department = :dept AND status = 'active' AND last_confirmed < :p AND EXISTS "
            "(SELECT 1 FROM children m JOIN child_flags s ON s.child_id = m.merged_into "
            "WHERE m.id = child_flags.child_id AND s.category = child_flags.category "
            "AND s.department = child_flags.department AND s.last_batch_id = :b)"
        ),
        {"b": batch_id, "dept": department, "p": period},
    )
    complete = (
        await session.execute(
            text("SELECT delivery_complete FROM feed_batches WHERE id = :b"), {"b": batch_id}
        )
    ).scalar()
    if complete is not None and not complete:
        return 0
    result = await session.execute(
        text(
            f"UPDATE child_flags SET status = 'lapsed', lapsed_period = {_V('p')}, lapsed_batch_id = {_V('b')} "
            "WHERE department = :dept AND status = 'active' AND last_confirmed < :p"
        ),
        {"b": batch_id, "dept": department, "p": period},
    )
    await session.execute(
        _now_param(
            "INSERT INTO review_items (kind, status, child_id, attribute, batch_id, detail, hukou_town, created_at) "
            f"SELECT 'flag_lapsed', 'open', f.child_id, f.category, {_V('b')}, '{{}}', c.hukou_town, :now "
            "FROM child_flags f JOIN children c ON c.id = f.child_id WHERE f.lapsed_batch_id = :b "
            "AND NOT EXISTS (SELECT 1 FROM child_flags s WHERE s.child_id = c.merged_into "
            "AND s.category = f.category AND s.department = f.department AND s.lapsed_batch_id = :b)"
        ),
        {"b": batch_id, "now": utcnow()},
    )
    return _rowcount(result)


async def touched_children(session: AsyncSession, batch_id: str) -> list[str]:
    """Every child whose snapshot the batch may have changed."""
    rows = await session.execute(
        text(
            "SELECT child_id FROM feed_rows WHERE batch_id = :b AND child_id IS NOT NULL "
            "UNION SELECT child_id FROM child_flags WHERE lapsed_batch_id = :b "
            "UNION SELECT c.merged_into FROM children c JOIN feed_rows r ON r.child_id = c.id "
            "WHERE r.batch_id = :b AND c.merged_into IS NOT NULL"
        ),
        {"b": batch_id},
    )
    return [r[0] for r in rows]


def period_end(period: str) -> dt.date:
    """The last day of a feed period's month (feeds are due by the end of March and September)."""
    year, month = int(period[:4]), int(period[5:7])
    first_next = dt.date(year + (month == 12), month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)
