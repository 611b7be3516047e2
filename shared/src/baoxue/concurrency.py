"""Optimistic concurrency for offline clients: ``ETag`` / ``If-Match`` with named conflicting fields.

A resource carries an integer ``version``; its ETag is ``W/"<version>"``. An update must send
``If-Match``; if the stored version moved on, the answer is 412 naming the fields that changed since
the client's version, so the mobile app can show the teacher what to reconcile — never a silent
last-write-wins.

Field-level versions: a record keeps ``field_versions`` = {field: the version that last changed it}, so
the 412 can name exactly the fields changed after the version the client read (``apply_changes`` for an
edit that must send ``If-Match``, ``ensure_current`` for an action where it is optional,
``bump_version`` after a change made by the service itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import Header

from baoxue.errors import PreconditionFailed, Problem

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        description="The record's ETag (optional; when sent, a stale one answers 412 precondition_failed)",
    ),
]
"""An optional ``If-Match`` request header, as an endpoint parameter."""


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(header: str | None) -> int:
    """The version named by an ``If-Match`` header; 428 when it is missing, 400 when malformed."""
    if not header:
        raise Problem("Send If-Match with the ETag you read.", status=428, code="precondition_required")
    value = header.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError:
        raise Problem("If-Match must be an ETag returned by this API.", code="bad_if_match") from None


def optional_if_match(header: str | None) -> int | None:
    """The version named by an optional ``If-Match`` (None when not sent; 400 when malformed): for
    actions that government systems call without it but that honour it when sent."""
    return parse_if_match(header) if header else None


def check_version(expected: int, current: int, conflicting_fields: Iterable[str]) -> None:
    """412 with the conflicting field names when ``expected`` is not the stored ``current`` version."""
    if expected != current:
        fields = sorted(set(conflicting_fields))
        raise PreconditionFailed(
            "The record changed since you read it.",
            current_version=current,
            current_etag=etag(current),
            conflicting_fields=fields,
        )


def changed_since(field_versions: Mapping[str, int], version: int) -> list[str]:
    return sorted(name for name, changed_at in field_versions.items() if changed_at > version)


def apply_changes(record: Any, changes: Mapping[str, Any], *, expected_version: int) -> list[str]:
    """Check ``expected_version`` against ``record.version`` (412 naming fields), then set the changed
    values, bump the version and record which fields it changed. Returns the changed field names."""
    check_version(
        expected_version, record.version, changed_since(record.field_versions or {}, expected_version)
    )
    changed = [name for name, value in changes.items() if getattr(record, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(record, name, changes[name])
    bump_version(record, changed)
    return changed


def bump_version(record: Any, changed: Iterable[str]) -> None:
    """A new version of ``record`` that changed the fields ``changed`` (already set by the caller)."""
    record.version += 1
    versions = dict(record.field_versions or {})
    for name in changed:
        versions[name] = record.version
    record.field_versions = versions


def ensure_current(record: Any, expected_version: int | None, **extensions: Any) -> None:
    """An optional precondition (``If-Match`` sent or not): 412 naming the fields changed since
    ``expected_version`` when the record moved on; nothing when no version was sent."""
    if expected_version is None or expected_version == record.version:
        return
    raise PreconditionFailed(
        "The record changed since you read it.",
        current_version=record.version,
        current_etag=etag(record.version),
        conflicting_fields=changed_since(record.field_versions or {}, expected_version),
        **extensions,
    )
