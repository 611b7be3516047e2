"""If-Match on student-record transitions: optional, honoured when sent (412 on a stale ETag); ETags answered."""

from __future__ import annotations

from tests.enrollment.conftest import SCHOOL_A, SCHOOL_B, enroll, make_id, outbox_events, start


async def test_transitions_honour_if_match_and_answer_etags(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    read = await svc.client.get(f"/v1/students/{sid}", headers=h)
    assert read.headers["ETag"] == 'W/"1"'

    suspended = await svc.client.post(
        f"/v1/students/{sid}/suspension",
        headers={**h, "If-Match": read.headers["ETag"]},
        json={"starts_on": "2026-09-01", "until": "2027-06-30", "reason": "illness"},
    )
    assert suspended.status_code == 200 and suspended.headers["ETag"] == 'W/"2"'

    stale = await svc.client.post(
        f"/v1/students/{sid}/resumption", headers={**h, "If-Match": 'W/"1"'}, json={"on": "2026-10-01"}
    )
    assert stale.status_code == 412
    problem = stale.json()
    assert problem["code"] == "precondition_failed" and problem["current_etag"] == 'W/"2"'
    assert "status" in problem["conflicting_fields"]
    assert (await svc.client.get(f"/v1/students/{sid}", headers=h)).json()["status"] == "suspended"

    # without If-Match (a government system): still allowed, and the answer carries the new ETag
    resumed = await svc.client.post(f"/v1/students/{sid}/resumption", headers=h, json={"on": "2026-10-01"})
    assert resumed.status_code == 200 and resumed.headers["ETag"] == 'W/"3"'
    for path, body in (
        ("dropout", {"on": "2026-10-08", "reason": "learning_weariness"}),
        ("graduation", {"on": "2027-07-01"}),
    ):
        late = await svc.client.post(
            f"/v1/students/{sid}/{path}", headers={**h, "If-Match": 'W/"2"'}, json=body
        )
        assert late.status_code == 412, path
    out = await svc.client.post(
        f"/v1/students/{sid}/dropout",
        headers={**h, "If-Match": 'W/"3"'},
        json={"on": "2026-10-08", "reason": "learning_weariness"},
    )
    assert out.status_code == 200 and out.headers["ETag"] == 'W/"4"'
    # only the accepted changes were published
    changes = await outbox_events(svc, "student.status_changed")
    assert [c["status"] for c in changes] == ["suspended", "enrolled", "dropped_out"]

    malformed = await svc.client.post(
        f"/v1/students/{sid}/graduation", headers={**h, "If-Match": "yesterday"}, json={"on": "2027-07-01"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "bad_if_match"


async def test_transfer_start_and_extension_honour_if_match(start_service, tokens):
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    stale = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers={**h, "If-Match": 'W/"7"'},
        json={"to_school": SCHOOL_B, "requested_on": "2026-09-07"},
    )
    assert stale.status_code == 412
    ok = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers={**h, "If-Match": 'W/"1"'},
        json={"to_school": SCHOOL_B, "requested_on": "2026-09-07"},
    )
    assert ok.status_code == 201 and ok.headers["ETag"] == 'W/"1"'

    other = (await enroll(svc, tokens, make_id())).json()["id"]
    await svc.client.post(
        f"/v1/students/{other}/suspension",
        headers=h,
        json={"starts_on": "2026-09-01", "until": "2027-06-30", "reason": "illness"},
    )
    ext_stale = await svc.client.post(
        f"/v1/students/{other}/suspension/extension",
        headers={**h, "If-Match": 'W/"1"'},
        json={"until": "2028-06-30"},
    )
    assert ext_stale.status_code == 412
    ext = await svc.client.post(
        f"/v1/students/{other}/suspension/extension",
        headers={**h, "If-Match": 'W/"2"'},
        json={"until": "2028-06-30"},
    )
    assert ext.status_code == 200 and ext.headers["ETag"] == 'W/"3"'
