"""Field-level versions for conditional updates: which fields changed after the version a client read.

A record keeps ``field_versions`` = {field: version that last changed it}. An update carrying a stale
``If-Match`` is refused with 412 naming the fields changed since the client's version
(``baoxue.concurrency.check_version``), so an offline client can reconcile them.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from baoxue.concurrency import check_version, etag
from baoxue.errors import PreconditionFailed


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
