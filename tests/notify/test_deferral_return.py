"""An expired deferral or exemption (enrollment's DeferralExpired, through NATS): the hukou school district
gets a notice that the child is due back and a deadline to confirm it, once per event and per deferral."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text

from baoxue.contracts.enrollment import DeferralExpired
from baoxue.testing.plugin import eventually
from baoxue.workdays import default_calendar, today_in_china
from notify.deadlines.service import sweep
from tests.notify.conftest import BUREAU, DISTRICT_A, start_notify

NOTICE_KEYS = {"deferral_id", "kind", "ended_on", "due"}


async def _get(svc, path, headers, **params):
    r = await svc.client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _keys(text_: str) -> set[str]:
    """The keys of a ``key=value key=value`` notice text (ids, codes and dates only)."""
    return {part.split("=", 1)[0] for part in text_.split()}


async def test_an_expired_deferral_tells_the_hukou_school_district_once_with_a_deadline_met_by_its_answer(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service)
    district = tokens.headers("school_district", DISTRICT_A)
    bureau = tokens.headers("bureau", BUREAU)
    ended = today_in_china() - dt.timedelta(days=1)
    deferral, child = str(uuid.uuid4()), str(uuid.uuid4())
    expired = DeferralExpired(
        deferral_id=deferral,
        kind="deferral",
        child_id=child,
        hukou_school_district=DISTRICT_A,
        ended_on=ended,
    )
    first = await event_publisher.publish(expired, subject=deferral, sequence=3)
    await event_publisher.publish(expired, subject=deferral, sequence=3, event_id=first.id)  # redelivered
    replay = await event_publisher.publish(
        expired, subject=deferral, sequence=3
    )  # a new event, same deferral

    async def applied() -> bool:
        async with svc.ctx.db.transaction() as s:
            ids = set(
                (
                    await s.execute(text("SELECT event_id FROM inbox WHERE event_type LIKE '%deferral%'"))
                ).scalars()
            )
        return ids == {first.id, replay.id}

    await eventually(applied)

    [deadline] = await _get(svc, "/v1/deadlines", district, kind="deferral_return")
    expected = default_calendar().add_workdays_lenient(ended, svc.settings.deferral_return_workdays)
    assert (deadline["org"], deadline["subject_id"], deadline["status"]) == (DISTRICT_A, deferral, "open")
    assert deadline["due_date"] == expected.due.isoformat() and deadline["due_date"] > ended.isoformat()
    [referral] = await _get(svc, "/v1/referrals", district)
    assert (referral["kind"], referral["to_org"], referral["from_org"]) == (
        "deferral_return",
        DISTRICT_A,
        BUREAU,
    )
    assert (referral["subject_id"], referral["child_id"], referral["required_action"]) == (
        deferral,
        child,
        "confirm_return",
    )
    assert _keys(referral["details"]) == NOTICE_KEYS and f"due={deadline['due_date']}" in referral["details"]
    [notice] = await _get(svc, "/v1/inbox", district, kind="referral")
    assert (notice["ref_type"], notice["ref_id"], notice["action_required"]) == (
        "referral",
        referral["id"],
        True,
    )
    assert notice["title"] == "缓学（免学）期满返校核实" and _keys(notice["body"]) == {
        "referral_id",
        "action",
    }
    [receipt_due] = await _get(svc, "/v1/deadlines", district, kind="referral_receipt")
    assert receipt_due["subject_id"] == referral["id"]

    # The district confirms receipt and reports the child back: both deadlines are met, on time.
    r = await svc.client.post(f"/v1/referrals/{referral['id']}/receipt", headers=district)
    assert r.status_code == 200, r.text
    r = await svc.client.post(
        f"/v1/referrals/{referral['id']}/outcome", json={"outcome": "returned"}, headers=district
    )
    assert (r.status_code, r.json()["status"], r.json()["outcome"]) == (200, "closed", "returned")
    [met] = await _get(svc, "/v1/deadlines", bureau, kind="deferral_return")
    assert (met["status"], met["on_time"], met["closed_on"]) == ("met", True, today_in_china().isoformat())
    other_district = tokens.headers("school_district", "37040610101")
    assert await _get(svc, "/v1/referrals", other_district) == []
    assert await _get(svc, "/v1/deadlines", other_district, kind="deferral_return") == []


async def test_an_unanswered_return_lapses_and_an_unknown_district_sends_it_to_the_bureau(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    exemption = str(uuid.uuid4())
    ended = today_in_china() - dt.timedelta(days=60)  # long past its return deadline
    await event_publisher.publish(
        DeferralExpired(deferral_id=exemption, kind="exemption", hukou_school_district=None, ended_on=ended),
        subject=exemption,
        sequence=2,
    )

    async def opened() -> bool:
        return len(await _get(svc, "/v1/deadlines", bureau, kind="deferral_return")) == 1

    await eventually(opened)
    [deadline] = await _get(svc, "/v1/deadlines", bureau, kind="deferral_return")
    assert deadline["org"] == BUREAU and "hukou_school_district_unknown" in deadline["warnings"]
    [referral] = await _get(svc, "/v1/referrals", bureau, kind="deferral_return")
    assert (
        referral["to_org"] == BUREAU
        and referral["child_id"] is None
        and "kind=exemption" in referral["details"]
    )

    async with svc.ctx.db.transaction() as s:
        result = await sweep(session=s, ctx=svc.ctx, today=today_in_china())
    assert result.lapsed >= 1
    [lapsed] = await _get(svc, "/v1/deadlines", bureau, kind="deferral_return")
    assert (lapsed["status"], lapsed["on_time"]) == ("lapsed", False)
    lapses = await _get(svc, "/v1/inbox", bureau, kind="lapse")
    assert any(m["ref_id"] == lapsed["id"] and "缓学（免学）期满返校核实" in m["title"] for m in lapses)
