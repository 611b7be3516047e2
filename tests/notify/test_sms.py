"""SMS through the gateway adapter, against the simulator over real HTTP."""

from __future__ import annotations

from sqlalchemy import select

from baoxue.fakes.sms_gateway import create_app
from notify.delivery.models import SmsMessage
from tests.notify.conftest import SCHOOL_A, start_notify

LETTER = {"kind": "parent_letter", "fields": {"case_ref": "c-0042"}, "addressee": "李四"}


async def test_a_guardian_is_texted_without_names_and_the_number_is_kept_encrypted(
    start_service, tokens, http_server
):
    gateway = create_app("test-key", fail_first=1)
    url = await http_server(gateway)
    svc = await start_notify(start_service, sms_gateway_url=url, sms_gateway_key="test-key")
    school = tokens.headers("school", SCHOOL_A)
    doc = (await svc.client.post("/v1/documents", json=LETTER, headers=school)).json()

    bad = await svc.client.post(
        f"/v1/documents/{doc['id']}/sms", json={"phone": "12345678901"}, headers=school
    )
    assert bad.status_code == 422 and bad.json()["code"] == "phone_invalid" and "12345678901" not in bad.text
    sent = await svc.client.post(
        f"/v1/documents/{doc['id']}/sms", json={"phone": "138 0000 1234"}, headers=school
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["status"] == "accepted" and body["attempts"] == 2  # one 503, then accepted
    assert body["phone"] == "138****1234"
    [message] = gateway.state.gateway.messages
    assert (
        message["to"] == "13800001234" and doc["number"] in message["text"] and "李四" not in message["text"]
    )
    async with svc.ctx.db.transaction() as s:
        row = (await s.execute(select(SmsMessage))).scalar_one()
    assert "13800001234" not in row.phone_enc
    assert (
        svc.ctx.cipher.decrypt(row.phone_enc, associated_data=f"sms_messages:{row.id}".encode())
        == "13800001234"
    )


async def test_a_wrong_gateway_key_is_recorded_as_failed(start_service, tokens, http_server):
    url = await http_server(create_app("right-key"))
    svc = await start_notify(start_service, sms_gateway_url=url, sms_gateway_key="wrong-key")
    school = tokens.headers("school", SCHOOL_A)
    doc = (await svc.client.post("/v1/documents", json=LETTER, headers=school)).json()
    sent = await svc.client.post(
        f"/v1/documents/{doc['id']}/sms", json={"phone": "13800001234"}, headers=school
    )
    assert (
        sent.json()["status"] == "failed"
        and sent.json()["attempts"] == 1
        and sent.json()["last_error"] == "http_401"
    )
