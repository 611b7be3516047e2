"""Numbered documents: gapless numbers under concurrent issuing, immutability, corrections, rendering."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from baoxue.workdays import today_in_china
from notify.documents.service import issue_document
from tests.notify.conftest import BUREAU, POLICE, POVERTY, SCHOOL_A, TOWN_A, TOWN_B, start_notify

ORDER = {"kind": "correction_order", "fields": {"case_ref": "c-0001", "deadline": "2026-12-18"}}


def _days_ago(days: int) -> dt.date:
    return today_in_china() - dt.timedelta(days=days)


async def test_numbers_have_no_gaps_or_repeats_under_concurrent_issuing(start_service, tokens):
    svc = await start_notify(start_service)
    town_a, town_b = tokens.headers("town", TOWN_A), tokens.headers("town", TOWN_B)
    issued = _days_ago(3)
    body = ORDER | {"issued_on": issued.isoformat()}
    responses = await asyncio.gather(
        *[svc.client.post("/v1/documents", json=body, headers=town_a) for _ in range(24)],
        *[svc.client.post("/v1/documents", json=body, headers=town_b) for _ in range(6)],
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201][
        :1
    ]
    numbers_a = sorted(r.json()["number"] for r in responses[:24])
    numbers_b = sorted(r.json()["number"] for r in responses[24:])
    assert numbers_a == [f"{TOWN_A}〔{issued.year}〕{n:04d}号" for n in range(1, 25)]
    assert numbers_b == [f"{TOWN_B}〔{issued.year}〕{n:04d}号" for n in range(1, 7)]
    # A new year starts again at 1 (a ladder's document dated by a sweep of the next year).
    async with svc.ctx.db.transaction() as s:
        next_year = await issue_document(
            session=s,
            ctx=svc.ctx,
            kind=ORDER["kind"],
            issuing_org=TOWN_A,
            issued_by="test",
            fields=ORDER["fields"],
            issued_on=dt.date(issued.year + 1, 1, 4),
        )
    assert next_year.number == f"{TOWN_A}〔{issued.year + 1}〕0001号"


async def test_a_failed_issue_uses_no_number(start_service, tokens):
    svc = await start_notify(start_service)
    town = tokens.headers("town", TOWN_A)
    missing = await svc.client.post(
        "/v1/documents", json={"kind": "correction_order", "fields": {"case_ref": "x"}}, headers=town
    )
    assert missing.status_code == 422 and missing.json()["code"] == "document_fields_missing"
    unknown_recipient = await svc.client.post(
        "/v1/documents", json=ORDER | {"recipient_org": "999"}, headers=town
    )
    assert unknown_recipient.status_code == 422
    ok = await svc.client.post("/v1/documents", json=ORDER, headers=town)
    assert ok.json()["number"] == f"{TOWN_A}〔{ok.json()['issued_on'][:4]}〕0001号"
    wrong_role = await svc.client.post(
        "/v1/documents", json=ORDER, headers=tokens.headers("school", SCHOOL_A)
    )
    assert wrong_role.status_code == 403 and wrong_role.json()["code"] == "document_kind_not_permitted"


async def test_an_issued_document_cannot_be_edited_only_corrected(start_service, tokens):
    svc = await start_notify(start_service)
    town = tokens.headers("town", TOWN_A)
    issued = (
        await svc.client.post("/v1/documents", json=ORDER | {"addressee": "张三丰"}, headers=town)
    ).json()
    assert issued["addressee"] == "张**"  # the town's officer sees the name masked (mask_name)

    for method in ("PATCH", "PUT"):
        r = await svc.client.request(
            method, f"/v1/documents/{issued['id']}", json={"title": "x"}, headers=town
        )
        assert r.status_code == 409 and r.json()["code"] == "document_immutable"
    with pytest.raises((IntegrityError, DBAPIError)):
        async with svc.ctx.db.transaction() as s:
            await s.execute(
                text("UPDATE documents SET title = 'changed' WHERE id = :id"), {"id": issued["id"]}
            )

    correction = await svc.client.post(
        f"/v1/documents/{issued['id']}/corrections",
        json={"fields": {"case_ref": "c-0001", "deadline": "2026-12-25"}, "reason": "期限填写错误"},
        headers=town,
    )
    assert correction.status_code == 201, correction.text
    v2 = correction.json()
    assert (v2["number"], v2["version"], v2["supersedes_id"]) == (issued["number"], 2, issued["id"])
    assert any("2026-12-25" in p for p in v2["paragraphs"])
    original = (await svc.client.get(f"/v1/documents/{issued['id']}", headers=town)).json()
    assert (
        any("2026-12-18" in p for p in original["paragraphs"])
        and original["content_sha256"] == issued["content_sha256"]
    )
    again = await svc.client.post(
        f"/v1/documents/{issued['id']}/corrections",
        json={"fields": ORDER["fields"], "reason": "再次更正"},
        headers=town,
    )
    assert again.status_code == 409 and again.json()["code"] == "document_superseded"
    other_town = await svc.client.get(f"/v1/documents/{issued['id']}", headers=tokens.headers("town", TOWN_B))
    assert other_town.status_code == 404

    clear = await svc.client.get(
        f"/v1/documents/{issued['id']}", headers=tokens.headers("town", TOWN_A, purpose="serving-the-order")
    )
    assert clear.json()["addressee"] == "张三丰"
    audit = svc.spec.tables.audit
    async with svc.ctx.db.transaction() as s:
        rows = (await s.execute(text(f"SELECT resource_type, purpose FROM {audit.name}"))).all()
    assert ("document_addressee", "serving-the-order") in [tuple(r) for r in rows]
    listed = (await svc.client.get("/v1/documents", headers=town)).json()["items"]
    assert len(listed) == 2 and all(
        "{{" not in p and "张三丰" not in p for d in listed for p in d["paragraphs"]
    )


async def test_documents_render_as_html_and_pdf_with_the_law_text(start_service, tokens):
    svc = await start_notify(start_service)
    school = tokens.headers("school", SCHOOL_A)
    admission = await svc.client.post(
        "/v1/documents",
        json={
            "kind": "admission_notice",
            "fields": {"report_date": "2027-08-30", "school_year": "2027—2028"},
        },
        headers=school,
    )
    doc = admission.json()
    assert any(p.startswith("第五十八条") or p.startswith("第十一条") for p in doc["paragraphs"])
    html = await svc.client.get(f"/v1/documents/{doc['id']}/html", headers=school)
    assert html.status_code == 200 and "入学通知书" in html.text and "义务教育法" in html.text
    pdf = await svc.client.get(f"/v1/documents/{doc['id']}/pdf", headers=school)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert b"NotoSerifCJK" in pdf.content  # the CJK font is embedded


async def test_hukou_clean_up_notice_reaches_the_departments_inboxes_and_is_acknowledged(
    start_service, tokens
):
    svc = await start_notify(start_service)
    police = tokens.headers("dept_police", POLICE)
    r = await svc.client.post(
        "/v1/documents",
        json={
            "kind": "hukou_cleanup_notice",
            "fields": {"period": "2026-09", "total": "12", "deceased": "2"},
            "recipient_org": POVERTY,
        },
        headers=police,
    )
    assert r.status_code == 201, r.text
    poverty = tokens.headers("dept_poverty", POVERTY)
    inbox = (await svc.client.get("/v1/inbox", headers=poverty)).json()["items"]
    assert len(inbox) == 1 and inbox[0]["ref_id"] == r.json()["id"] and inbox[0]["action_required"]
    assert (await svc.client.get("/v1/inbox", headers=tokens.headers("bureau", BUREAU))).json()["items"] == []
    ack = await svc.client.post(f"/v1/inbox/{inbox[0]['id']}/acknowledgement", headers=poverty)
    assert ack.status_code == 200 and ack.json()["acknowledged_at"] is not None
    foreign = await svc.client.post(f"/v1/inbox/{inbox[0]['id']}/read", headers=police)
    assert foreign.status_code == 404
    # The receipt (回执) is published once: NoticeAcknowledged names the document and the organisations.
    again = await svc.client.post(f"/v1/inbox/{inbox[0]['id']}/acknowledgement", headers=poverty)
    assert again.json()["acknowledged_at"] == ack.json()["acknowledged_at"]
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = [json.loads(e) for e in (await s.execute(select(table.c.envelope))).scalars()]
    acknowledged = [e for e in envelopes if e["type"] == "baoxue.notify.notice.acknowledged.v1"]
    assert [(e["subject"], e["data"]) for e in acknowledged] == [
        (
            r.json()["id"],
            {
                "notice_id": r.json()["id"],
                "number": r.json()["number"],
                "kind": "hukou_cleanup_notice",
                "issuing_org": POLICE,
                "recipient_org": POVERTY,
                "case_id": None,
                "acknowledged_on": today_in_china().isoformat(),
            },
        )
    ]


async def test_a_retried_issue_with_the_same_idempotency_key_returns_the_same_document(start_service, tokens):
    svc = await start_notify(start_service)
    town = tokens.headers("town", TOWN_A) | {"Idempotency-Key": "k-123"}
    issued = _days_ago(3)
    first = await svc.client.post(
        "/v1/documents", json=ORDER | {"issued_on": issued.isoformat()}, headers=town
    )
    retry = await svc.client.post(
        "/v1/documents", json=ORDER | {"issued_on": issued.isoformat()}, headers=town
    )
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json()["id"] == first.json()["id"]
    other = await svc.client.post(
        "/v1/documents", json=ORDER | {"issued_on": _days_ago(2).isoformat()}, headers=town
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    fresh = await svc.client.post(
        "/v1/documents",
        json=ORDER | {"issued_on": issued.isoformat()},
        headers=tokens.headers("town", TOWN_A),
    )
    assert fresh.json()["number"] == f"{TOWN_A}〔{issued.year}〕0002号"


async def test_a_document_is_dated_today_or_at_most_the_backdating_window_before(start_service, tokens):
    """The date gives the number's year: never after today, at most NOTIFY_DOCUMENT_BACKDATE_DAYS before
    it (422 document_date_out_of_range, no number used)."""
    svc = await start_notify(start_service, document_backdate_days=30)
    town = tokens.headers("town", TOWN_A)
    tomorrow = today_in_china() + dt.timedelta(days=1)
    for day in ("0001-01-01", "9999-12-31", "1900-01-01", tomorrow.isoformat(), _days_ago(31).isoformat()):
        refused = await svc.client.post("/v1/documents", json=ORDER | {"issued_on": day}, headers=town)
        assert refused.status_code == 422, (day, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "document_date_out_of_range"
        assert [e["field"] for e in refused.json()["errors"]] == ["issued_on"]
    oldest = _days_ago(30)
    ok = await svc.client.post("/v1/documents", json=ORDER | {"issued_on": oldest.isoformat()}, headers=town)
    assert ok.status_code == 201 and ok.json()["number"] == f"{TOWN_A}〔{oldest.year}〕0001号"
    today = await svc.client.post("/v1/documents", json=ORDER, headers=town)
    assert today.status_code == 201 and today.json()["issued_on"] == today_in_china().isoformat()
