"""The blacklist alerts when a case names a listed provider; referrals reach departments and close."""

from __future__ import annotations

import datetime as dt
import uuid

from baoxue.contracts.casework import CaseConfirmed, CaseOpened
from baoxue.contracts.registry import ChildStatusChanged
from baoxue.testing.plugin import eventually
from notify.bulletins.models import CaseFact
from tests.notify.conftest import BUREAU, POLICE, POVERTY, SCHOOL_A, SCHOOL_B, TOWN_A, TOWN_B, start_notify

INSPECTOR = "370406D07"

PROVIDER = {
    "name": "明德国学堂",
    "kind": "guoxueban",
    "town": TOWN_B,
    "location": "店子镇某村民房",
    "evidence": [
        {
            "kind": "inspection_record",
            "description": "联合检查：无办学许可，在读适龄儿童6人",
            "reference": "店子镇教办〔2026〕12号",
        }
    ],
}


async def _known_case(svc, event_publisher, school: str, hukou_town: str) -> str:
    """A case notify has heard of (casework's CaseOpened): a check or a referral must name one."""
    case_id = str(uuid.uuid4())
    await event_publisher.publish(
        CaseOpened(
            case_id=case_id, school_code=school, hukou_town=hukou_town, state="suspected", signal="absence"
        ),
        subject=case_id,
    )

    async def known() -> bool:
        async with svc.ctx.db.transaction() as s:
            return await s.get(CaseFact, case_id) is not None

    await eventually(known)
    return case_id


async def _inbox(svc, tokens, role, org, kind):
    items = (
        await svc.client.get("/v1/inbox", params={"kind": kind}, headers=tokens.headers(role, org))
    ).json()
    return items["items"]


async def test_a_case_naming_a_listed_provider_alerts_the_town_and_the_bureau(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    town_b = tokens.headers("town", TOWN_B)
    created = await svc.client.post("/v1/providers", json=PROVIDER, headers=town_b)
    assert created.status_code == 201, created.text
    provider = created.json()
    assert provider["evidence"][0]["reference"] == "店子镇教办〔2026〕12号"
    outside = await svc.client.post(
        "/v1/providers", json=PROVIDER | {"name": "另一私塾"}, headers=tokens.headers("town", TOWN_A)
    )
    assert outside.status_code == 404
    duplicate = await svc.client.post(
        "/v1/providers", json=PROVIDER | {"name": "明德 国学堂"}, headers=town_b
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "provider_listed"

    case_id = await _known_case(svc, event_publisher, SCHOOL_B, TOWN_B)
    hits = await svc.client.post(
        "/v1/providers/matches",
        json={"case_id": case_id, "town": TOWN_B, "whereabouts": "家长称孩子在（明德国学堂）读经"},
        headers=tokens.headers("school", SCHOOL_B),
    )
    assert [h["id"] for h in hits.json()] == [provider["id"]]
    none = await svc.client.post(
        "/v1/providers/matches",
        json={"case_id": case_id, "whereabouts": "在外地打工"},
        headers=tokens.headers("school", SCHOOL_B),
    )
    assert none.json() == []
    assert [m["ref_id"] for m in await _inbox(svc, tokens, "town", TOWN_B, "alert")] == [provider["id"]]
    assert len(await _inbox(svc, tokens, "bureau", BUREAU, "alert")) == 1

    # A confirmed illegal-schooling case in the provider's town flags it too (once per case).
    other_case = str(uuid.uuid4())
    event = CaseConfirmed(
        case_id=other_case,
        school_code=SCHOOL_B,
        hukou_town=TOWN_B,
        state="confirmed",
        reason="illegal_schooling",
        report_due=dt.date(2026, 12, 10),
    )
    await event_publisher.publish(event, subject=other_case)

    async def alerted() -> bool:
        return len(await _inbox(svc, tokens, "town", TOWN_B, "alert")) == 2

    await eventually(alerted)
    delisted = await svc.client.post(
        f"/v1/providers/{provider['id']}/delisting",
        json={"reason": "已取缔"},
        headers=tokens.headers("bureau", BUREAU),
    )
    assert delisted.json()["status"] == "delisted"
    after = await svc.client.post(
        "/v1/providers/matches",
        json={"case_id": case_id, "whereabouts": "明德国学堂"},
        headers=tokens.headers("school", SCHOOL_B),
    )
    assert after.json() == []


async def test_hukou_clean_up_reaches_four_departments_and_is_tracked_to_closure(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service)
    child = str(uuid.uuid4())
    change = ChildStatusChanged(
        child_id=child,
        status="deceased",
        previous_status="active",
        effective_date=dt.date(2026, 10, 3),
        hukou_town=TOWN_A,
    )
    await event_publisher.publish(change, subject=child, sequence=4)
    await event_publisher.publish(change, subject=child, sequence=4)  # a repeat sends nothing new

    async def sent() -> bool:
        rows = (await svc.client.get("/v1/referrals", headers=tokens.headers("bureau", BUREAU))).json()[
            "items"
        ]
        return len(rows) == 4

    await eventually(sent)
    rows = (await svc.client.get("/v1/referrals", headers=tokens.headers("bureau", BUREAU))).json()["items"]
    assert sorted(r["to_org"] for r in rows) == ["370406D01", "370406D03", "370406D04", "370406D05"]
    assert all(r["from_org"] == POLICE and r["required_action"] == "update_records" for r in rows)

    poverty = tokens.headers("dept_poverty", POVERTY)
    own = (await svc.client.get("/v1/referrals", headers=poverty)).json()["items"]
    assert len(own) == 1 and own[0]["status"] == "sent"
    assert len(await _inbox(svc, tokens, "dept_poverty", POVERTY, "referral")) == 1
    receipt = await svc.client.post(f"/v1/referrals/{own[0]['id']}/receipt", headers=poverty)
    assert receipt.json()["status"] == "received"
    foreign = await svc.client.post(
        f"/v1/referrals/{own[0]['id']}/receipt", headers=tokens.headers("dept_civil", "370406D05")
    )
    assert foreign.status_code == 404
    closed = await svc.client.post(
        f"/v1/referrals/{own[0]['id']}/outcome",
        json={"outcome": "records_updated", "note": "已更新建档立卡信息"},
        headers=poverty,
    )
    assert closed.json()["status"] == "closed" and closed.json()["outcome"] == "records_updated"
    again = await svc.client.post(
        f"/v1/referrals/{own[0]['id']}/outcome", json={"outcome": "records_updated"}, headers=poverty
    )
    assert again.status_code == 409


async def test_a_working_child_refers_the_employer_to_hrss_and_a_venue_goes_to_two_departments(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case_id = str(uuid.uuid4())
    await event_publisher.publish(
        CaseConfirmed(
            case_id=case_id,
            school_code=SCHOOL_B,
            hukou_town=TOWN_B,
            state="confirmed",
            reason="working",
            report_due=dt.date(2026, 12, 10),
        ),
        subject=case_id,
    )
    bureau = tokens.headers("bureau", BUREAU)

    async def referred() -> bool:
        return len((await svc.client.get("/v1/referrals", headers=bureau)).json()["items"]) == 1

    await eventually(referred)
    row = (await svc.client.get("/v1/referrals", headers=bureau)).json()["items"][0]
    assert (row["kind"], row["to_org"], row["from_org"]) == ("child_labour", "370406D08", SCHOOL_B)

    venue = await svc.client.post(
        "/v1/referrals",
        json={"kind": "venue", "case_id": case_id, "details": "工作日在网吧上网"},
        headers=tokens.headers("school", SCHOOL_B),
    )
    assert venue.status_code == 201
    assert sorted(r["to_org"] for r in venue.json()) == ["370406D09", "370406D10"]


async def test_alerts_and_referrals_are_writes_within_the_callers_jurisdiction(
    start_service, event_publisher, tokens
):
    """Checking whereabouts (a hit alerts a town) and referring a case are writes: the read-only inspection
    office may do neither, a caller names only a case of its own and alerts only its own or the case's town;
    a listing is changed (evidence, delisting) only by the organisation that listed it or the bureau."""
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    bureau, town_a, town_b = (
        tokens.headers("bureau", BUREAU),
        tokens.headers("town", TOWN_A),
        tokens.headers("town", TOWN_B),
    )
    school_a = tokens.headers("school", SCHOOL_A)
    district_wide = await svc.client.post("/v1/providers", json=PROVIDER | {"town": None}, headers=bureau)
    in_b = await svc.client.post("/v1/providers", json=PROVIDER | {"name": "另一私塾"}, headers=town_b)
    assert district_wide.status_code == in_b.status_code == 201
    own_case = await _known_case(svc, event_publisher, SCHOOL_A, TOWN_A)
    pupil_from_b = await _known_case(svc, event_publisher, SCHOOL_A, TOWN_B)
    foreign_case = await _known_case(svc, event_publisher, SCHOOL_B, TOWN_B)

    def check(case_id: str, town: str | None = None) -> dict:
        return {"case_id": case_id, "town": town, "whereabouts": "在另一私塾读经"}

    referral = {"kind": "venue", "case_id": own_case, "details": "工作日在网吧上网"}
    inspector = tokens.headers("inspector", INSPECTOR)
    assert (
        await svc.client.post("/v1/providers/matches", json=check(own_case), headers=inspector)
    ).status_code == 403
    assert (await svc.client.post("/v1/referrals", json=referral, headers=inspector)).status_code == 403

    for refused, status, code in (
        (check(foreign_case, TOWN_B), 404, "not_found"),  # another school's case
        (check(str(uuid.uuid4())), 404, "not_found"),  # a case notify does not know
        (check(own_case, TOWN_B), 403, "outside_jurisdiction"),  # another town's inbox
    ):
        answer = await svc.client.post("/v1/providers/matches", json=refused, headers=school_a)
        assert (answer.status_code, answer.json()["code"]) == (status, code), refused
    for case_id in (foreign_case, str(uuid.uuid4())):
        answer = await svc.client.post(
            "/v1/referrals", json=referral | {"case_id": case_id}, headers=school_a
        )
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert await _inbox(svc, tokens, "town", TOWN_B, "alert") == []
    assert (await svc.client.get("/v1/referrals", headers=bureau)).json()["items"] == []

    # The school's own case: alerting its town, or the pupil's hukou town, and referring it are allowed.
    own = await svc.client.post("/v1/providers/matches", json=check(own_case, TOWN_A), headers=school_a)
    assert [h["id"] for h in own.json()] == [in_b.json()["id"]]
    hukou = await svc.client.post("/v1/providers/matches", json=check(pupil_from_b, TOWN_B), headers=school_a)
    assert hukou.status_code == 200 and len(await _inbox(svc, tokens, "town", TOWN_B, "alert")) == 1
    sent = await svc.client.post("/v1/referrals", json=referral, headers=school_a)
    assert sent.status_code == 201 and len(sent.json()) == 2

    # Evidence and delisting: the listing organisation or the bureau only.
    evidence = {"kind": "other", "description": "群众举报仍在招生"}
    for path, body, headers in (
        (f"{district_wide.json()['id']}/delisting", {"reason": "随便"}, town_a),
        (f"{in_b.json()['id']}/delisting", {"reason": "随便"}, town_a),
        (f"{in_b.json()['id']}/evidence", evidence, town_a),
        (f"{district_wide.json()['id']}/evidence", evidence, town_b),
    ):
        answer = await svc.client.post(f"/v1/providers/{path}", json=body, headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (403, "not_the_listing_organisation"), path
    added = await svc.client.post(
        f"/v1/providers/{in_b.json()['id']}/evidence", json=evidence, headers=town_b
    )
    assert added.status_code == 201 and len(added.json()["evidence"]) == 2
    by_bureau = await svc.client.post(
        f"/v1/providers/{in_b.json()['id']}/delisting", json={"reason": "已取缔"}, headers=bureau
    )
    assert by_bureau.json()["status"] == "delisted"
    listed = (await svc.client.get(f"/v1/providers/{district_wide.json()['id']}", headers=bureau)).json()
    assert (listed["status"], len(listed["evidence"])) == ("listed", 1)
