"""``baoxue pii rotate`` over each service's real records, and no encrypted column left undeclared.

For each service: records are written through its API while only key A exists; every column that holds
a cipher token must be one the service declares (``ServiceSpec.encrypted_columns``), and every declared
column must hold some (so each declaration is exercised). Then the command itself runs (``baoxue pii
rotate``, its environment holding keys A and B with B active, in small batches), reporting per column
as many rewritten tokens as the column holds; a second run rewrites none. Every declared value then
carries key B and decrypts, with key B alone and the declared associated data, to the plaintext it had;
no token under key A is left anywhere in the database (outbox, jobs and audit tables included); and a
second instance of the service configured with key B only (the old key retired) reads the records
through its API.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from baoxue.cli import main as baoxue_cli
from baoxue.fakes.sms_gateway import create_app as sms_gateway_app
from baoxue.fakes.webhook_receiver import create_app as webhook_receiver_app
from baoxue.pii.crypto import FieldCipher
from baoxue.pii.masking import mask_id_number
from baoxue.pii.rotation import EncryptedColumn
from baoxue.testing.attacks import ROLE_ORGS
from baoxue.testing.plugin import RunningService
from notify.delivery.webhooks import deliver_due
from notify.documents.models import Document
from notify.documents.service import addressee_aad
from tests.notify.conftest import QUIET, http_server  # noqa: F401  (the fixture)

from .seeds import fresh_id_number, police_row, school_case, submit_police_feed

KEY_A, KEY_B = b"rotation-key-A16", b"rotation-key-B16"
KEYS_A = f"ka:{base64.b64encode(KEY_A).decode()}"
KEYS_BOTH = f"{KEYS_A},kb:{base64.b64encode(KEY_B).decode()}"
KEYS_B = f"kb:{base64.b64encode(KEY_B).decode()}"
CIPHER_A = FieldCipher({"ka": KEY_A}, active_key_id="ka")
CIPHER_B = FieldCipher({"kb": KEY_B}, active_key_id="kb")

# A FieldCipher token anywhere in a cell (also inside JSON): "<alg>.<key id>.<base64url nonce+ct+tag>".
TOKEN = re.compile(r"\b(?:s4|a2)\.([A-Za-z0-9_-]{1,32})\.[A-Za-z0-9_-]{38,}")

SCHOOL = ROLE_ORGS["school"]
BUREAU, POLICE, POVERTY, JUSTICE = (
    ROLE_ORGS["bureau"],
    ROLE_ORGS["dept_police"],
    ROLE_ORGS["dept_poverty"],
    ROLE_ORGS["justice"],
)
WEBHOOK_SECRET = "a-long-random-shared-secret"

Check = Callable[[RunningService], Awaitable[None]]


# ---- what is stored --------------------------------------------------------------------------------


async def _scan_tokens(svc: RunningService) -> dict[str, set[str]]:
    """Every column of every table of the service holding a cipher token: ``table.column`` → key ids."""
    found: dict[str, set[str]] = {}
    async with svc.ctx.db.transaction() as s:
        for table in svc.spec.metadata.sorted_tables:
            for row in (await s.execute(select(table))).mappings():
                for name, value in row.items():
                    if isinstance(value, str | bytes):
                        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                        for match in TOKEN.finditer(text):
                            found.setdefault(f"{table.name}.{name}", set()).add(match.group(1))
    return found


async def _declared_values(
    svc: RunningService, cipher: FieldCipher
) -> dict[str, dict[tuple[Any, ...], tuple[str, str]]]:
    """Each declared column's values: row key → (token, plaintext decrypted with ``cipher``)."""
    values: dict[str, dict[tuple[Any, ...], tuple[str, str]]] = {}
    async with svc.ctx.db.transaction() as s:
        for column in svc.spec.encrypted_columns:
            t = column.table
            wanted = [t.c[c] for c in dict.fromkeys((*column.key_columns, *column.aad_columns))]
            rows = (
                await s.execute(select(*wanted, t.c[column.column]).where(t.c[column.column].is_not(None)))
            ).mappings()
            values[column.name] = {
                tuple(r[k] for k in column.key_columns): (
                    r[column.column],
                    cipher.decrypt(r[column.column], associated_data=column.aad_for(dict(r))),
                )
                for r in rows
            }
    return values


def _run_rotation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], svc: RunningService
) -> str:
    """``baoxue pii rotate --service NAME --batch 2`` with the service's database and keys A, B (B active)."""
    prefix = svc.spec.name.upper() + "_"
    env = {
        "DATABASE_URL": svc.settings.database_url,
        "PII_KEYS": KEYS_BOTH,
        "PII_ACTIVE_KEY_ID": "kb",
        "BLIND_INDEX_KEY": svc.settings.blind_index_key,
        "ENVIRONMENT": "test",
        "NATS_URL": svc.settings.nats_url,
        "JWT_PUBLIC_KEY_FILE": str(svc.settings.jwt_public_key_file),
    }
    for name, value in env.items():
        monkeypatch.setenv(prefix + name, value)
    capsys.readouterr()
    assert baoxue_cli(["pii", "rotate", "--service", svc.spec.name, "--batch", "2"]) == 0
    return capsys.readouterr().out


async def _rotate_and_check(
    start_service: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    svc: RunningService,
    check: Check,
    **overrides: Any,
) -> None:
    declared = {c.name for c in svc.spec.encrypted_columns}
    stored = await _scan_tokens(svc)
    undeclared = set(stored) - declared
    assert not undeclared, (
        f"{svc.spec.name}: columns hold cipher tokens but are not in ServiceSpec.encrypted_columns "
        f"(baoxue pii rotate would leave them under the old key): {sorted(undeclared)}"
    )
    unexercised = declared - set(stored)
    assert not unexercised, f"{svc.spec.name}: the workload wrote no token to {sorted(unexercised)}"
    assert all(ids == {"ka"} for ids in stored.values()), stored
    before = await _declared_values(svc, CIPHER_A)
    await check(svc)  # the API reads them under key A (so the same check after rotation means something)

    # The command runs in a thread of its own (it starts its own event loop), beside the running service.
    out = await asyncio.to_thread(_run_rotation, monkeypatch, capsys, svc)
    for name, values in before.items():
        assert f"{svc.spec.name}: done: {name}: {len(values)} rewritten" in out, out
        if len(values) > 2:
            assert f"{name}: 2 rewritten (batch 1)" in out, out  # progress after each batch
    again = await asyncio.to_thread(_run_rotation, monkeypatch, capsys, svc)
    for name in before:
        assert f"{svc.spec.name}: done: {name}: 0 rewritten" in again, again

    after = await _declared_values(svc, CIPHER_B)  # key B alone decrypts every value
    assert after.keys() == before.keys()
    for name, values in before.items():
        assert after[name].keys() == values.keys(), name
        for key, (old_token, plain) in values.items():
            new_token, new_plain = after[name][key]
            assert new_token.startswith("s4.kb.") and new_token != old_token, (name, key)
            assert new_plain == plain, (name, key)
    stored = await _scan_tokens(svc)
    assert all(ids == {"kb"} for ids in stored.values()), f"tokens under the old key remain: {stored}"

    retired = await start_service(svc.spec.name, pii_keys=KEYS_B, pii_active_key_id="kb", **overrides)
    await check(retired)


# ---- the services' records ----------------------------------------------------------------------------


async def test_casework_cases(start_service, tokens, monkeypatch, capsys):
    svc = await start_service("casework", pii_keys=KEYS_A, pii_active_key_id="ka")
    school = tokens.headers("school", SCHOOL)
    cases: dict[str, str] = {}
    for n in range(5):
        idn = fresh_id_number()
        r = await svc.client.post(
            "/v1/cases",
            json=school_case(f"stu-rot-{n}", idn),
            headers=school,
        )
        assert r.status_code == 201, r.text
        cases[r.json()["id"]] = idn

    async def check(s: RunningService) -> None:
        for case_id, idn in cases.items():
            r = await s.client.get(f"/v1/cases/{case_id}", headers=school)
            assert r.status_code == 200, r.text
            assert r.json()["id_number_masked"] == mask_id_number(idn)

    await _rotate_and_check(start_service, monkeypatch, capsys, svc, check)


async def test_enrollment_student_records(start_service, tokens, monkeypatch, capsys):
    svc = await start_service("enrollment", pii_keys=KEYS_A, pii_active_key_id="ka")
    students: dict[str, str] = {}
    for _ in range(5):
        idn = fresh_id_number()
        r = await svc.client.post(
            "/v1/students",
            json={"school_code": SCHOOL, "grade": 4, "id_number": idn, "student_number": "G" + idn},
            headers=tokens.headers("school", SCHOOL),
        )
        assert r.status_code == 201, r.text
        students[r.json()["id"]] = idn

    async def check(s: RunningService) -> None:
        bureau = tokens.headers("bureau", BUREAU, purpose="key rotation test")
        for student_id, idn in students.items():
            r = await s.client.get(f"/v1/students/{student_id}", headers=bureau)
            assert r.status_code == 200, r.text
            assert (r.json()["id_number"], r.json()["student_number"]) == (idn, "G" + idn)

    await _rotate_and_check(start_service, monkeypatch, capsys, svc, check)


async def test_notify_documents_contacts_and_secrets(
    start_service,
    tokens,
    monkeypatch,
    capsys,
    http_server,  # noqa: F811
):
    gateway = sms_gateway_app("test-key")
    receiver = webhook_receiver_app(WEBHOOK_SECRET)
    settings = QUIET | {
        "sms_gateway_url": await http_server(gateway),
        "sms_gateway_key": "test-key",
        "webhook_backoff_seconds": 0,
    }
    svc = await start_service("notify", pii_keys=KEYS_A, pii_active_key_id="ka", **settings)
    await svc.wait_events_ready()
    school, bureau = tokens.headers("school", SCHOOL), tokens.headers("bureau", BUREAU)
    hook = await svc.client.post(
        "/v1/webhooks",
        json={"org": POVERTY, "url": f"{await http_server(receiver)}/hook", "secret": WEBHOOK_SECRET},
        headers=bureau,
    )
    assert hook.status_code == 201, hook.text
    # Emailed messages go to another organisation than the webhook's (no SMTP server in this test).
    for address in ("zhang.san@example.gov.cn", "li.si@example.gov.cn"):
        r = await svc.client.post(
            "/v1/email-recipients", json={"org": JUSTICE, "address": address}, headers=bureau
        )
        assert r.status_code == 201, r.text
    documents: dict[str, str] = {}
    for n, addressee in enumerate(("李四", "王小红", "赵大山")):
        r = await svc.client.post(
            "/v1/documents",
            json={"kind": "parent_letter", "fields": {"case_ref": f"c-{n}"}, "addressee": addressee},
            headers=school,
        )
        assert r.status_code == 201, r.text
        documents[r.json()["id"]] = addressee
        sms = await svc.client.post(
            f"/v1/documents/{r.json()['id']}/sms", json={"phone": f"1380000123{n}"}, headers=school
        )
        assert sms.status_code == 201 and sms.json()["status"] == "accepted", sms.text
        ack = await svc.client.post(
            f"/v1/documents/{r.json()['id']}/acknowledgements",
            json={"kind": "commitment", "acknowledged_on": "2026-11-20", "signer": f"{addressee}家长"},
            headers=school,
        )
        assert ack.status_code == 201, ack.text

    async def check(s: RunningService) -> None:
        reader = tokens.headers("school", SCHOOL, purpose="key rotation test")
        for document_id, addressee in documents.items():
            r = await s.client.get(f"/v1/documents/{document_id}", headers=reader)
            assert r.status_code == 200 and r.json()["addressee"] == addressee, r.text
        # The webhook secret: a notice pushed now is signed with the decrypted secret and accepted.
        accepted = len(receiver.state.receiver.accepted)
        notice = await s.client.post(
            "/v1/documents",
            json={
                "kind": "hukou_cleanup_notice",
                "fields": {"period": "2026-09", "total": "3"},
                "recipient_org": POVERTY,
            },
            headers=tokens.headers("dept_police", POLICE),
        )
        assert notice.status_code == 201, notice.text
        await deliver_due(s.ctx)
        assert receiver.state.receiver.rejected_signatures == 0
        assert len(receiver.state.receiver.accepted) == accepted + 1

    await _rotate_and_check(start_service, monkeypatch, capsys, svc, check, **settings)
    # The values that only the service itself reads (phones sent to, signers, email addresses) were
    # compared above with their plaintext before rotation; here against what was submitted.
    values = await _declared_values(svc, CIPHER_B)
    assert sorted(p for _, p in values["sms_messages.phone_enc"].values()) == [
        "13800001230",
        "13800001231",
        "13800001232",
    ]
    assert sorted(p for _, p in values["document_acknowledgements.signer_enc"].values()) == sorted(
        f"{a}家长" for a in documents.values()
    )
    assert sorted(p for _, p in values["email_recipients.address_enc"].values()) == [
        "li.si@example.gov.cn",
        "zhang.san@example.gov.cn",
    ]
    # Issued documents stay immutable: the trigger lets through only a change of the addressee's key.
    table, document_id = Document.__table__, next(iter(documents))  # type: ignore[attr-defined]
    other_key = FieldCipher({"kc": KEY_A}, active_key_id="kc")
    for change in (
        {"title": "改过的标题"},
        {"addressee_enc": CIPHER_B.encrypt("别人", associated_data=addressee_aad(document_id))},  # same key
        {
            "addressee_enc": other_key.encrypt("别人", associated_data=addressee_aad(document_id)),
            "title": "x",
        },
    ):
        with pytest.raises(IntegrityError, match="immutable"):
            async with svc.ctx.db.transaction() as s:
                await s.execute(update(table).where(table.c.id == document_id).values(change))


async def test_registry_feeds_children_and_provenance(start_service, tokens, monkeypatch, capsys):
    svc = await start_service("registry", pii_keys=KEYS_A, pii_active_key_id="ka")
    police = tokens.headers("dept_police", POLICE)
    children: dict[str, str] = {}
    rows = []
    for n in range(4):
        idn = fresh_id_number("20150911")
        phone = f"1391234567{n}"
        children[idn] = phone
        rows.append(police_row(idn, phone, n))
    # A row with reason codes (a wrong check character): its original cells are kept encrypted for the
    # error report.
    rows.append(
        {**rows[0], "姓名": "错号儿童", "身份证号": "37040620150911000X", "监护人电话": "13912345679"}
    )
    batch = await submit_police_feed(svc, tokens, rows)
    batch_id = batch["id"]
    # The wrong check character is a warning: the row is kept, with reason codes.
    assert batch.get("accepted") == 5 and batch.get("warnings", 0) >= 1, batch

    async def check(s: RunningService) -> None:
        bureau = tokens.headers("bureau", BUREAU, purpose="key rotation test")
        for idn, phone in children.items():
            r = await s.client.post("/v1/children/lookup", json={"id_number": idn}, headers=bureau)
            assert r.status_code == 200, r.text
            child = r.json()
            assert child["id_number"] == idn and child["guardian_phone"] == phone, child
            provenance = {a["attribute"]: a["value"] for a in child["provenance"]}
            assert provenance["guardian_phone"] == phone  # child_attributes.value_cipher
        report = await s.client.get(f"/v1/feeds/batches/{batch_id}/errors", headers=police)
        assert report.status_code == 200 and "错号儿童" in report.text, report.text[:300]

    await _rotate_and_check(start_service, monkeypatch, capsys, svc, check)


def test_every_declaration_names_a_real_column():
    """The declarations load (a misspelt column fails at import) and name each column once."""
    from baoxue.catalog import load_service

    for name in ("registry", "enrollment", "casework", "notify"):
        columns: list[EncryptedColumn] = list(load_service(name).encrypted_columns)
        assert columns, name
        assert len({c.name for c in columns}) == len(columns), name
