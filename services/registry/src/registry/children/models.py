"""Merged child records, per-attribute provenance, category flags, history, review items and merges."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from registry.database import RegistryModel


class Child(RegistryModel, table=True):
    """One child (one person). Identity values keep their first assertion; other values are in provenance."""

    __tablename__ = "children"
    __table_args__ = (
        Index("ix_children_id_blind", "id_blind", unique=True),
        Index("ix_children_hukou_town", "hukou_town"),
        Index("ix_children_hukou_school_district", "hukou_school_district"),
        Index("ix_children_birth_date", "birth_date"),
        Index("ix_children_name_pinyin", "name_pinyin"),
        Index("ix_children_merged_into", "merged_into"),
        # Room on each page for a child's next version: see migration 0006.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    id_blind: str | None = Field(default=None, max_length=80)
    id_cipher: str | None = Field(default=None, sa_column=Column(Text))
    name: str | None = Field(default=None, max_length=60)
    name_pinyin: str | None = Field(default=None, max_length=250)
    sex: str | None = Field(default=None, max_length=1)
    birth_date: dt.date | None = Field(default=None, sa_column=Column(Date))
    district: str = Field(max_length=6)
    hukou_address: str | None = Field(default=None, max_length=200)
    hukou_town: str | None = Field(default=None, max_length=12)
    hukou_village: str | None = Field(default=None, max_length=15)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    current_address: str | None = Field(default=None, max_length=200)
    guardian_name: str | None = Field(default=None, max_length=200)
    guardian_phone: str | None = Field(default=None, sa_column=Column(Text))
    """Encrypted (``FieldCipher`` token, associated data ``PHONE_AAD``); never plaintext."""
    disability_type: str | None = Field(default=None, max_length=20)
    disability_grade: str | None = Field(default=None, max_length=4)
    categories: str = Field(default=",", max_length=300)
    """Active categories as ``,a,b,`` (so a filter is one LIKE)."""
    sources: str = Field(default=",", max_length=100)
    """Departments whose feeds mention the child, as ``,police,civil,``."""
    status: str = Field(default="active", max_length=12)
    status_effective: dt.date | None = Field(default=None, sa_column=Column(Date))
    merged_into: str | None = Field(default=None, max_length=36)
    needs_review: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    version: int = 1
    snapshot_hash: str | None = Field(default=None, max_length=64)
    first_batch_id: str | None = Field(default=None, max_length=36)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ChildAttribute(RegistryModel, table=True):
    """Provenance: department D asserted value V of attribute A of the child, first and last in which batch."""

    __tablename__ = "child_attributes"
    __table_args__ = (
        UniqueConstraint(
            "child_id", "attribute", "department", "value", name="uq_child_attributes_assertion"
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    child_id: str = Field(max_length=36)  # looked up through the unique index, which begins with it
    attribute: str = Field(max_length=30)
    value: str = Field(max_length=200)
    """The asserted value; for an encrypted attribute (guardian phone) its blind index, so equal values
    compare equal although their ciphertexts differ."""
    value_cipher: str | None = Field(default=None, sa_column=Column(Text))
    """The encrypted value of an encrypted attribute (``PHONE_AAD``); NULL for the others."""
    department: str = Field(max_length=20)
    first_batch_id: str = Field(max_length=36)
    first_period: str = Field(max_length=7)
    last_batch_id: str = Field(max_length=36)
    last_period: str = Field(max_length=7)


class ChildFlag(RegistryModel, table=True):
    """A category flag asserted by one department, with valid-from, last-confirmed and lapse."""

    __tablename__ = "child_flags"
    __table_args__ = (
        UniqueConstraint("child_id", "category", "department", name="uq_child_flags_assertion"),
        Index("ix_child_flags_dept_status", "department", "status"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    child_id: str = Field(max_length=36)  # looked up through the unique index, which begins with it
    category: str = Field(max_length=30)
    department: str = Field(max_length=20)
    valid_from: str = Field(max_length=7)
    first_batch_id: str = Field(max_length=36)
    last_confirmed: str = Field(max_length=7)
    last_batch_id: str = Field(max_length=36)
    status: str = Field(default="active", max_length=10)
    lapsed_period: str | None = Field(default=None, max_length=7)
    lapsed_batch_id: str | None = Field(default=None, max_length=36)


class ChildHistory(RegistryModel, table=True):
    """What happened to a child record (codes and surrogate ids only)."""

    __tablename__ = "child_history"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    child_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=30)
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    batch_id: str | None = Field(default=None, max_length=36)
    reference: str | None = Field(default=None, max_length=36)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class ReviewItem(RegistryModel, table=True):
    """Something a person must look at: an attribute conflict, a lapsed flag, an unmatched address, a link."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_kind_status", "kind", "status"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    kind: str = Field(max_length=40)
    """``conflict``, ``flag_lapsed``, ``link_candidate``, or the row reason code (severity ``review``)
    that opened it: ``id_collision``, ``address_unmatched``, ``id_sex_mismatch``, …"""
    status: str = Field(default="open", max_length=10)
    child_id: str = Field(max_length=36, index=True)
    other_child_id: str | None = Field(default=None, max_length=36)
    attribute: str | None = Field(default=None, max_length=30)
    batch_id: str | None = Field(default=None, max_length=36)
    score: float | None = None
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    hukou_town: str | None = Field(default=None, max_length=12)
    merge_id: int | None = None
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ChildMerge(RegistryModel, table=True):
    """Record ``merged_id`` was found to be the same person as ``survivor_id`` (undoable)."""

    __tablename__ = "child_merges"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    survivor_id: str = Field(max_length=36, index=True)
    merged_id: str = Field(max_length=36, index=True)
    reason: str = Field(max_length=20)
    evidence: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    previous_status: str = Field(default="active", max_length=12)
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    undone_by: str | None = Field(default=None, max_length=100)
    undone_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
