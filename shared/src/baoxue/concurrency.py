"""Optimistic concurrency for offline clients: ``ETag`` / ``If-Match`` with named conflicting fields.

A resource carries an integer ``version``; its ETag is ``W/"<version>"``. An update must send
``If-Match``; if the stored version moved on, the answer is 412 naming the fields that changed since
the client's version, so the mobile app can show the teacher what to reconcile — never a silent
last-write-wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from baoxue.errors import PreconditionFailed, Problem


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
