"""Table models of ``baoxue.db.model_base``: a field left out gets a fresh value of its default factory.

The base fills those fields itself (SQLModel's constructor would inspect each factory's signature on every
row object); these tests hold it to what SQLModel and pydantic promise: no shared mutable default, given
values kept, ordinary defaults still applied, and a factory that wants the validated data refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import JSON
from sqlmodel import Field

from baoxue.db import model_base

Base = model_base("DefaultsTestModel")


def _stamp() -> dt.datetime:
    return dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


class Thing(Base, table=True):  # type: ignore[call-arg, misc]
    __tablename__ = "defaults_test_things"
    id: str = Field(primary_key=True)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    versions: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    stamped_at: dt.datetime = Field(default_factory=_stamp)
    count: int = 3


def test_each_object_gets_its_own_fresh_default() -> None:
    first, second = Thing(id="a"), Thing(id="b")
    first.tags.append("x")
    first.versions["x"] = 1
    assert second.tags == [] and second.versions == {}
    assert Thing(id="c").tags == []
    assert first.stamped_at == _stamp() and first.count == 3


def test_given_values_are_kept() -> None:
    thing = Thing(id="a", tags=["t"], versions={"v": 2}, count=5)
    assert (thing.tags, thing.versions, thing.count) == (["t"], {"v": 2}, 5)


def test_a_default_factory_that_takes_the_validated_data_is_refused() -> None:
    class Other(Base, table=True):  # type: ignore[call-arg, misc]
        __tablename__ = "defaults_test_others"
        id: str = Field(primary_key=True)
        label: str = Field(default_factory=lambda data: f"for {data['id']}")

    with pytest.raises(TypeError, match="must take no arguments"):
        Other(id="a")


def test_the_orm_state_is_set_up_as_for_any_table_model() -> None:
    thing: Any = Thing(id="a")
    assert thing._sa_instance_state.transient  # an ORM object, ready to add to a session
