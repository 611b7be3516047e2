"""Student records: one active record per child, transitions, transfers, annotations, jurisdiction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import get_args

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from baoxue.contracts.registry import ChildStatusChanged
from baoxue.testing.plugin import eventually
from enrollment.codes import CODE_LISTS
from enrollment.signals.sweep import sweep_once
from enrollment.students.models import StudentRecord
from enrollment.students.schemas import DropoutReason, ResumptionReason, SuspensionReason
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    DPF,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_B,
    enroll,
    make_id,
    outbox_events,
    register_child,
    start,
)


async def test_register_masks_identifiers_links_child_and_publishes(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    r = await enroll(svc, tokens, kid)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["child_id"] == kid.child_id and body["hukou_school_district"] == DISTRICT_A
    assert body["id_number"] == kid.id_number[:6] + "********" + kid.id_number[-4:]
    assert kid.id_number not in r.text
    unmasked = await svc.client.get(
        f"/v1/students/{body['id']}", headers=tokens.headers("bureau", BUREAU, purpose="verification")
    )
    assert unmasked.json()["id_number"] == kid.id_number
    events = await outbox_events(svc, "student.registered")
    assert events[0]["student_id"] == body["id"] and "id_number" not in events[0]
    assert kid.id_number not in str(events)


async def test_second_active_record_is_refused_with_409(start_service, tokens):
    svc = await start(start_service)
    id_number = make_id()
    assert (await enroll(svc, tokens, id_number)).status_code == 201
    second = await svc.client.post(
        "/v1/students",
        headers=tokens.headers("school", SCHOOL_B),
        json={
            "student_number": "L2026000000001",
            "id_number": id_number,
            "school_code": SCHOOL_B,
            "grade": 4,
        },
    )
    assert second.status_code == 409
    assert second.json()["code"] == "active_record_exists"
    assert second.headers["content-type"].startswith("application/problem+json")


async def test_the_database_itself_refuses_two_active_records(start_service):
    svc = await start(start_service)
    row = dict(
        student_number_kind="L",
        student_number_enc="x",
        id_number_enc="x",
        id_blind_index="bi-1",
        school_code=SCHOOL_A,
        grade=3,
        status="enrolled",
        status_since=dt.date(2026, 9, 1),
    )
    async with svc.ctx.db.transaction() as s:
        s.add(StudentRecord(id=str(uuid.uuid4()), student_number_index="n1", **row))
        # a closed record of the same child is fine
        s.add(
            StudentRecord(id=str(uuid.uuid4()), student_number_index="n0", **{**row, "status": "graduated"})
        )
    with pytest.raises(IntegrityError):
        async with svc.ctx.db.transaction() as s:
            s.add(
                StudentRecord(
                    id=str(uuid.uuid4()), student_number_index="n2", **{**row, "status": "suspended"}
                )
            )


async def test_invalid_student_numbers_are_422(start_service, tokens):
    svc = await start(start_service)
    id_number = make_id()
    for number, code in (
        ("G" + id_number[:-1] + ("0" if id_number[-1] != "0" else "1"), "invalid_student_number"),
        ("X123", "invalid_student_number"),
        ("G" + make_id(), "student_number_mismatch"),
    ):
        r = await svc.client.post(
            "/v1/students",
            headers=tokens.headers("school", SCHOOL_A),
            json={"student_number": number, "id_number": id_number, "school_code": SCHOOL_A, "grade": 2},
        )
        assert r.status_code == 422 and r.json()["code"] == code, number
        assert id_number not in r.text


async def test_suspension_limits_extension_and_expiry_makes_suspected_dropout(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    too_long = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers=h,
        json={"starts_on": "2026-09-01", "until": "2027-09-03", "reason": "illness"},
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "suspension_too_long"
    ok = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers=h,
        json={"starts_on": "2026-09-01", "until": "2027-06-30", "reason": "illness"},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "suspended"
    ext = await svc.client.post(
        f"/v1/students/{sid}/suspension/extension", headers=h, json={"until": "2028-06-30"}
    )
    assert ext.status_code == 200 and ext.json()["suspension_extended"] is True
    again = await svc.client.post(
        f"/v1/students/{sid}/suspension/extension", headers=h, json={"until": "2028-07-30"}
    )
    assert again.status_code == 409 and again.json()["code"] == "suspension_already_extended"

    assert (await sweep_once(svc.ctx, dt.date(2028, 6, 30)))["suspensions_expired"] == 0
    assert (await sweep_once(svc.ctx, dt.date(2028, 7, 1)))["suspensions_expired"] == 1
    assert (await sweep_once(svc.ctx, dt.date(2028, 7, 2)))["suspensions_expired"] == 0  # raised once
    signals = await outbox_events(svc, "dropout_suspected")
    assert [s["signal"] for s in signals] == ["suspension_expired"] and signals[0]["student_id"] == sid


async def test_resumption_dropout_keeps_record_and_graduation(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    bad = await svc.client.post(f"/v1/students/{sid}/resumption", headers=h, json={"on": "2026-10-01"})
    assert bad.status_code == 409 and bad.json()["code"] == "invalid_transition"
    out = await svc.client.post(
        f"/v1/students/{sid}/dropout", headers=h, json={"on": "2026-10-08", "reason": "learning_weariness"}
    )
    assert out.json()["status"] == "dropped_out"
    assert (await svc.client.get(f"/v1/students/{sid}", headers=h)).status_code == 200  # kept
    assert [s["signal"] for s in await outbox_events(svc, "dropout_suspected")] == ["dropped_out_status"]
    back = await svc.client.post(f"/v1/students/{sid}/resumption", headers=h, json={"on": "2026-11-02"})
    assert back.json()["status"] == "enrolled"
    grad = await svc.client.post(f"/v1/students/{sid}/graduation", headers=h, json={"on": "2027-07-01"})
    assert grad.json()["status"] == "graduated"
    changes = await outbox_events(svc, "student.status_changed")
    assert [(c["previous_status"], c["status"]) for c in changes] == [
        ("enrolled", "dropped_out"),
        ("dropped_out", "enrolled"),
        ("enrolled", "graduated"),
    ]


@pytest.mark.parametrize(
    ("path", "body", "code_list"),
    [
        ("dropout", {"on": "2026-10-08"}, "dropout_reason"),
        ("suspension", {"starts_on": "2026-09-01", "until": "2027-06-30"}, "suspension_reason"),
    ],
)
async def test_a_status_change_reason_is_a_code_never_free_text(start_service, tokens, path, body, code_list):
    """The reason goes into StudentStatusChanged on the event bus: only a code of its list is accepted, and a
    422 names the allowed codes; nothing typed by the school is stored or published."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    typed = "父亲在外打工，母亲电话13800000001，孩子在家带弟弟"
    refused = await svc.client.post(f"/v1/students/{sid}/{path}", headers=h, json={**body, "reason": typed})
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"
    [error] = refused.json()["errors"]
    allowed = list(CODE_LISTS[code_list])
    assert error["field"] == "reason" and error["allowed"] == allowed
    assert all(code in error["message"] for code in allowed)  # in Chinese, the default
    assert typed not in refused.text and "13800000001" not in refused.text
    assert (await svc.client.get(f"/v1/students/{sid}", headers=h)).json()["status"] == "enrolled"
    assert await outbox_events(svc, "student.status_changed") == []

    ok = await svc.client.post(f"/v1/students/{sid}/{path}", headers=h, json={**body, "reason": "illness"})
    assert ok.status_code == 200, ok.text
    assert [c["reason"] for c in await outbox_events(svc, "student.status_changed")] == ["illness"]
    served = (await svc.client.get(f"/v1/code-lists/{code_list}")).json()
    assert [c["code"] for c in served] == allowed


async def test_a_resumption_reason_is_a_code_and_graduation_takes_none(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    await svc.client.post(
        f"/v1/students/{sid}/dropout", headers=h, json={"on": "2026-10-08", "reason": "other"}
    )
    free = await svc.client.post(
        f"/v1/students/{sid}/resumption", headers=h, json={"on": "2026-11-02", "reason": "老师劝回来了"}
    )
    assert free.status_code == 422 and free.json()["errors"][0]["allowed"] == list(
        CODE_LISTS["resumption_reason"]
    )
    back = await svc.client.post(
        f"/v1/students/{sid}/resumption", headers=h, json={"on": "2026-11-02", "reason": "persuaded_back"}
    )
    assert back.status_code == 200, back.text
    grad = await svc.client.post(
        f"/v1/students/{sid}/graduation", headers=h, json={"on": "2027-07-01", "reason": "毕业了"}
    )
    assert grad.status_code == 422 and grad.json()["errors"][0]["code"] == "extra_forbidden"
    changes = await outbox_events(svc, "student.status_changed")
    assert [c["reason"] for c in changes] == ["other", "persuaded_back"]


def test_the_reason_codes_accepted_are_the_code_lists_served():
    assert get_args(DropoutReason) == tuple(CODE_LISTS["dropout_reason"])
    assert get_args(SuspensionReason) == tuple(CODE_LISTS["suspension_reason"])
    assert get_args(ResumptionReason) == tuple(CODE_LISTS["resumption_reason"])


async def test_transfer_needs_both_sides_and_hangs_after_ten_workdays(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    t = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers=tokens.headers("school", SCHOOL_A),
        json={"to_school": SCHOOL_B, "requested_on": "2026-09-07"},
    )
    assert t.status_code == 201
    transfer = t.json()
    assert (
        transfer["due_on"] == "2026-09-20"
    )  # 10 working days; Sunday 20 September 2026 is a make-up working day
    # the receiving side cannot approve for the sending side
    wrong = await svc.client.post(
        f"/v1/transfers/{transfer['id']}/approvals",
        headers=tokens.headers("school", SCHOOL_B),
        json={"side": "sending", "on": "2026-09-08"},
    )
    assert wrong.status_code == 404
    sent = await svc.client.post(
        f"/v1/transfers/{transfer['id']}/approvals",
        headers=tokens.headers("school", SCHOOL_A),
        json={"side": "sending", "on": "2026-09-08"},
    )
    assert sent.json()["state"] == "requested" and sent.json()["sending_approved"]
    assert (await sweep_once(svc.ctx, dt.date(2026, 9, 20)))["transfers_hanging"] == 0
    assert (await sweep_once(svc.ctx, dt.date(2026, 9, 21)))["transfers_hanging"] == 1
    assert [s["signal"] for s in await outbox_events(svc, "dropout_suspected")] == ["transfer_hanging"]
    done = await svc.client.post(
        f"/v1/transfers/{transfer['id']}/approvals",
        headers=tokens.headers("school", SCHOOL_B),
        json={"side": "receiving", "on": "2026-09-24"},
    )
    assert done.json()["state"] == "completed"
    moved = await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school", SCHOOL_B))
    assert moved.status_code == 200 and moved.json()["school_code"] == SCHOOL_B
    assert (
        await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school", SCHOOL_A))
    ).status_code == 404


async def test_hukou_district_sees_its_child_enrolled_elsewhere_other_town_school_gets_404(
    start_service, event_publisher, tokens
):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher, district=DISTRICT_A)
    sid = (await enroll(svc, tokens, kid, school=SCHOOL_B)).json()["id"]
    assert (
        await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school_district", DISTRICT_A))
    ).status_code == 200
    listed = await svc.client.get("/v1/students", headers=tokens.headers("school_district", DISTRICT_A))
    assert [s["id"] for s in listed.json()["items"]] == [sid]
    assert (
        await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school_district", DISTRICT_B))
    ).status_code == 200
    assert (
        await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school", SCHOOL_A))
    ).status_code == 404
    assert (await svc.client.get("/v1/students", headers=tokens.headers("school", SCHOOL_A))).json()[
        "items"
    ] == []
    assert (
        await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("town", TOWN_B))
    ).status_code == 200
    async with svc.ctx.db.transaction() as s:
        audited = (
            await s.execute(
                select(func.count())
                .select_from(svc.spec.tables.audit)
                .where(svc.spec.tables.audit.c.action == "read")
            )
        ).scalar_one()
    assert audited >= 3


async def test_annotation_visible_only_to_bureau_dpf_and_own_school(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    body = {
        "assessing_body": "区残联评估委员会",
        "evidence_ref": "assess/2026/7",
        "assessed_on": "2026-09-10",
        "reassess_on": "2027-09-10",
    }
    assert (
        await svc.client.post(
            f"/v1/students/{sid}/annotations",
            headers=tokens.headers("school_district", DISTRICT_A),
            json=body,
        )
    ).status_code == 403
    made = await svc.client.post(
        f"/v1/students/{sid}/annotations", headers=tokens.headers("dept_dpf", DPF), json=body
    )
    assert made.status_code == 201
    for role, org, status in (
        ("bureau", BUREAU, 200),
        ("dept_dpf", DPF, 200),
        ("school", SCHOOL_A, 200),
        ("school", SCHOOL_B, 404),
        ("school_district", DISTRICT_A, 403),
        ("town", "370406001", 403),
    ):
        r = await svc.client.get(f"/v1/students/{sid}/annotations", headers=tokens.headers(role, org))
        assert r.status_code == status, role
    async with svc.ctx.db.transaction() as s:
        assert (await s.execute(text("SELECT count(*) FROM incapacity_annotations"))).scalar_one() == 1


async def test_registration_retry_with_idempotency_key_replays(start_service, tokens):
    svc = await start(start_service)
    id_number = make_id()
    body = {"student_number": "G" + id_number, "id_number": id_number, "school_code": SCHOOL_A, "grade": 1}
    h = {**tokens.headers("school", SCHOOL_A), "Idempotency-Key": "reg-1"}
    first = await svc.client.post("/v1/students", headers=h, json=body)
    again = await svc.client.post("/v1/students", headers=h, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    other = await svc.client.post("/v1/students", headers=h, json={**body, "grade": 2})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    async with svc.ctx.db.transaction() as s:
        stored = (await s.execute(text("SELECT request_hash, response FROM idempotency_keys"))).one()
    assert id_number not in stored.response


async def test_transfer_out_of_district_closes_the_record_with_bureau_consent(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    t = (
        await svc.client.post(
            f"/v1/students/{sid}/transfers",
            headers=tokens.headers("school", SCHOOL_A),
            json={"to_school": "32030200101001", "requested_on": "2026-09-07"},
        )
    ).json()
    await svc.client.post(
        f"/v1/transfers/{t['id']}/approvals",
        headers=tokens.headers("school", SCHOOL_A),
        json={"side": "sending", "on": "2026-09-08"},
    )
    school = await svc.client.post(
        f"/v1/transfers/{t['id']}/approvals",
        headers=tokens.headers("school", SCHOOL_A),
        json={"side": "receiving", "on": "2026-09-09"},
    )
    assert school.status_code == 404
    done = await svc.client.post(
        f"/v1/transfers/{t['id']}/approvals",
        headers=tokens.headers("bureau", BUREAU),
        json={"side": "receiving", "on": "2026-09-09"},
    )
    assert done.json()["state"] == "completed"
    record = (await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school", SCHOOL_A))).json()
    assert record["status"] == "transferred_out" and record["school_code"] == SCHOOL_A


async def test_foreign_and_missing_records_answer_the_same_problem(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id(), school=SCHOOL_B)).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    answers = []
    for target in (sid, str(uuid.uuid4())):
        for path in ("dropout", "resumption", "graduation"):
            r = await svc.client.post(f"/v1/students/{target}/{path}", headers=h, json={"on": "2026-10-08"})
            answers.append((r.status_code, r.json()["code"], r.json()["detail"]))
        r = await svc.client.get(f"/v1/students/{target}", headers=h)
        answers.append((r.status_code, r.json()["code"], r.json()["detail"]))
    assert set(answers) == {(404, "student_not_found", "No such student record.")}


async def _open_transfer(svc, tokens, sid: str, to_school: str = SCHOOL_B) -> dict:
    r = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers=tokens.headers("school", SCHOOL_A),
        json={"to_school": to_school, "requested_on": "2026-09-07"},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _transfer_row(svc, transfer_id: str) -> dict:
    async with svc.ctx.db.transaction() as s:
        row = await s.execute(
            text("SELECT state, closed_reason, closed_on FROM student_transfers WHERE id = :t"),
            {"t": transfer_id},
        )
        found = dict(row.mappings().one())
    return {**found, "closed_on": found["closed_on"] and str(found["closed_on"])}


@pytest.mark.parametrize(("path", "status"), [("dropout", "dropped_out"), ("graduation", "graduated")])
async def test_closing_a_record_cancels_its_open_transfer_which_then_neither_completes_nor_hangs(
    start_service, tokens, path, status
):
    """A transfer requested while the student was enrolled, then the student dropped out (or graduated):
    the transfer is cancelled with the reason, the receiving school's approval is refused (the record is
    not moved), and the sweep does not flag it as hanging."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    transfer = await _open_transfer(svc, tokens, sid)
    school_a, school_b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    sent = await svc.client.post(
        f"/v1/transfers/{transfer['id']}/approvals",
        headers=school_a,
        json={"side": "sending", "on": "2026-09-08"},
    )
    assert sent.status_code == 200, sent.text
    closed = await svc.client.post(f"/v1/students/{sid}/{path}", headers=school_a, json={"on": "2026-09-09"})
    assert closed.status_code == 200 and closed.json()["status"] == status, closed.text
    assert await _transfer_row(svc, transfer["id"]) == {
        "state": "cancelled",
        "closed_reason": f"student_{status}",
        "closed_on": "2026-09-09",
    }
    received = await svc.client.post(
        f"/v1/transfers/{transfer['id']}/approvals",
        headers=school_b,
        json={"side": "receiving", "on": "2026-09-10"},
    )
    assert received.status_code == 409 and received.json()["code"] == "transfer_closed", received.text
    record = (await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("bureau", BUREAU))).json()
    assert (record["status"], record["school_code"]) == (status, SCHOOL_A)
    assert (await sweep_once(svc.ctx, dt.date(2026, 10, 30)))["transfers_hanging"] == 0
    assert "transfer_hanging" not in [s["signal"] for s in await outbox_events(svc, "dropout_suspected")]


async def test_a_deceased_childs_open_transfer_is_cancelled(start_service, event_publisher, tokens):
    """The registry reports the child deceased: the record is closed and its open transfer cancelled."""
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    transfer = await _open_transfer(svc, tokens, sid)
    await event_publisher.publish(
        ChildStatusChanged(
            child_id=kid.child_id,
            status="deceased",
            previous_status="active",
            effective_date=dt.date(2026, 9, 12),
        ),  # type: ignore[arg-type]
        subject=kid.child_id,
        sequence=2,
    )

    async def cancelled() -> bool:
        return (await _transfer_row(svc, transfer["id"]))["state"] == "cancelled"

    await eventually(cancelled)
    assert (await _transfer_row(svc, transfer["id"]))["closed_reason"] == "student_deceased"


async def test_a_suspension_cancels_the_open_transfer_which_then_neither_completes_nor_hangs(
    start_service, tokens
):
    """Only an enrolled student transfers: a suspension cancels the open transfer (``student_suspended``),
    the approvals are refused (409 ``transfer_closed``), the record stays where it is, and the sweep does
    not flag the transfer as hanging (kept open, it could only hang and raise a false ``transfer_hanging``
    for a child on approved leave)."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    transfer = await _open_transfer(svc, tokens, sid)
    school_a = tokens.headers("school", SCHOOL_A)
    suspended = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers=school_a,
        json={"starts_on": "2026-09-08", "until": "2027-01-31", "reason": "illness"},
    )
    assert suspended.status_code == 200, suspended.text
    assert await _transfer_row(svc, transfer["id"]) == {
        "state": "cancelled",
        "closed_reason": "student_suspended",
        "closed_on": "2026-09-08",
    }
    for side, headers in (("sending", school_a), ("receiving", tokens.headers("school", SCHOOL_B))):
        r = await svc.client.post(
            f"/v1/transfers/{transfer['id']}/approvals",
            headers=headers,
            json={"side": side, "on": "2026-09-10"},
        )
        assert r.status_code == 409 and r.json()["code"] == "transfer_closed", r.text
    record = (await svc.client.get(f"/v1/students/{sid}", headers=school_a)).json()
    assert (record["status"], record["school_code"]) == ("suspended", SCHOOL_A)
    assert (await sweep_once(svc.ctx, dt.date(2026, 10, 30)))["transfers_hanging"] == 0
    assert "transfer_hanging" not in [s["signal"] for s in await outbox_events(svc, "dropout_suspected")]


@pytest.mark.parametrize(
    "to_school",
    [TOWN_B, DISTRICT_B, BUREAU, "37040610199999"],  # a town, a school district, a department, no such school
)
async def test_a_transfer_goes_to_a_school_never_to_another_organisation(start_service, tokens, to_school):
    """As registration does: a directory code that is not a school, or a code of this district that is not
    in the directory, is 422 ``unknown_school`` (a code outside the district is an out-of-district school)."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    r = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers=tokens.headers("school", SCHOOL_A),
        json={"to_school": to_school, "requested_on": "2026-09-07"},
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_school", r.text


async def test_a_transfer_to_a_town_opened_before_the_check_cannot_complete(start_service, tokens):
    """A transfer to a town stored before requests were checked: neither side's approval is accepted (422
    ``unknown_school``), the record stays at its school, and the sending school can reject it."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    transfer = await _open_transfer(svc, tokens, sid)
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            text("UPDATE student_transfers SET to_school = :town WHERE id = :t"),
            {"town": TOWN_B, "t": transfer["id"]},
        )
    school, bureau = tokens.headers("school", SCHOOL_A), tokens.headers("bureau", BUREAU)
    for side, headers in (("sending", school), ("receiving", bureau)):
        r = await svc.client.post(
            f"/v1/transfers/{transfer['id']}/approvals",
            headers=headers,
            json={"side": side, "on": "2026-09-08"},
        )
        assert r.status_code == 422 and r.json()["code"] == "unknown_school", r.text
    record = (await svc.client.get(f"/v1/students/{sid}", headers=bureau)).json()
    assert (record["status"], record["school_code"]) == ("enrolled", SCHOOL_A)
    rejected = await svc.client.post(f"/v1/transfers/{transfer['id']}/rejection", headers=school)
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected", rejected.text


@pytest.mark.parametrize(
    ("starts_on", "until", "status"),
    [
        ("2026-09-01", "2027-09-01", 200),  # the same date one year later
        ("2026-09-01", "2027-09-02", 422),  # one year and a day (366 days)
        ("2027-03-01", "2028-03-01", 200),  # one year across 29 February: 366 days, still one year
        ("2027-02-28", "2028-02-29", 422),  # 366 days, one year and a day
        ("2028-02-29", "2029-02-28", 200),  # 29 February: one year later is 28 February
        ("2028-02-29", "2029-03-01", 422),
    ],
)
async def test_a_suspension_lasts_at_most_until_the_same_date_one_year_later(
    start_service, tokens, starts_on, until, status
):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    r = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers=tokens.headers("school", SCHOOL_A),
        json={"starts_on": starts_on, "until": until, "reason": "illness"},
    )
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["code"] == "suspension_too_long"


@pytest.mark.parametrize(("until", "status"), [("2029-02-28", 200), ("2029-03-01", 422)])
async def test_an_extension_lasts_at_most_until_the_same_date_one_year_later(
    start_service, tokens, until, status
):
    """Suspended until 29 February 2028: the one extension may run to 28 February 2029, not a day more."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    r = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers=h,
        json={"starts_on": "2027-03-01", "until": "2028-02-29", "reason": "illness"},
    )
    assert r.status_code == 200, r.text
    ext = await svc.client.post(f"/v1/students/{sid}/suspension/extension", headers=h, json={"until": until})
    assert ext.status_code == status, ext.text
