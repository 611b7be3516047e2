"""Child queries: jurisdiction (404 and never listed), masking by role and purpose, audit of every read."""

from __future__ import annotations

from sqlalchemy import select

from tests.registry.conftest import BUREAU, INSPECTOR, csv_body, dept_headers, submit
from tests.registry.people import DIANZI_SD, DIANZI_TOWN, LI, SHANCHENG_TOWN, WANG, ZHAO


async def _audit(svc) -> list[dict]:
    table = svc.spec.tables.audit
    async with svc.ctx.db.transaction() as s:
        return [dict(r) for r in (await s.execute(select(table).order_by(table.c.position))).mappings()]


async def _setup(svc, tokens) -> dict[str, str]:
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row(), ZHAO.row()))
    await submit(svc, tokens, "poverty", "2026-09", csv_body(ZHAO.row(category="建档立卡")))
    page = (await svc.client.get("/v1/children", headers=tokens.headers("bureau", BUREAU))).json()
    return {c["hukou_town"] + ":" + c["birth_date"]: c["id"] for c in page["items"]}


async def test_town_sees_only_its_hukou_town_and_gets_404_for_others(start_service, tokens):
    svc = await start_service("registry")
    ids = await _setup(svc, tokens)
    li_id = ids[f"{SHANCHENG_TOWN}:{LI.birth.isoformat()}"]
    dianzi = tokens.headers("town", DIANZI_TOWN)
    page = (await svc.client.get("/v1/children", headers=dianzi)).json()
    assert {c["hukou_town"] for c in page["items"]} == {DIANZI_TOWN} and len(page["items"]) == 2
    assert li_id not in {c["id"] for c in page["items"]}
    assert (await svc.client.get(f"/v1/children/{li_id}", headers=dianzi)).status_code == 404
    r = await svc.client.post("/v1/children/lookup", json={"id_number": LI.id}, headers=dianzi)
    assert r.status_code == 404
    assert (await svc.client.get(f"/v1/children?town={SHANCHENG_TOWN}", headers=dianzi)).json()["items"] == []
    shancheng = tokens.headers("town", SHANCHENG_TOWN)
    assert (await svc.client.get(f"/v1/children/{li_id}", headers=shancheng)).status_code == 200
    sd = (await svc.client.get("/v1/children", headers=tokens.headers("school_district", DIANZI_SD))).json()
    assert {c["hukou_school_district"] for c in sd["items"]} == {DIANZI_SD}
    assert (
        await svc.client.get("/v1/children", headers=tokens.headers("school", "37040610101001"))
    ).status_code == 403
    all_ = (await svc.client.get("/v1/children", headers=dept_headers(tokens, "civil"))).json()
    assert len(all_["items"]) == 3


async def test_filters_and_cursor_pagination(start_service, tokens):
    svc = await start_service("registry")
    await _setup(svc, tokens)
    h = tokens.headers("bureau", BUREAU)
    seen, cursor = [], None
    while True:
        page = (
            await svc.client.get(
                "/v1/children", params={"limit": 2} | ({"cursor": cursor} if cursor else {}), headers=h
            )
        ).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    poor = (await svc.client.get("/v1/children", params={"category": "registered_poor"}, headers=h)).json()[
        "items"
    ]
    assert [c["birth_date"] for c in poor] == [ZHAO.birth.isoformat()]
    assert (
        len((await svc.client.get("/v1/children", params={"source": "poverty"}, headers=h)).json()["items"])
        == 1
    )
    # Ages on 2026-08-31: WANG 10, ZHAO 11, LI 12.
    aged = (
        await svc.client.get(
            "/v1/children", params={"age_min": 11, "age_max": 12, "age_on": "2026-08-31"}, headers=h
        )
    ).json()
    assert {c["birth_date"] for c in aged["items"]} == {ZHAO.birth.isoformat(), LI.birth.isoformat()}
    assert (
        len((await svc.client.get("/v1/children", params={"town": DIANZI_TOWN}, headers=h)).json()["items"])
        == 2
    )
    assert (await svc.client.get("/v1/children", params={"cursor": "%%%"}, headers=h)).json()[
        "code"
    ] == "invalid_cursor"


async def test_masking_by_role_and_purpose(start_service, tokens):
    svc = await start_service("registry")
    await _setup(svc, tokens)

    async def look(role: str, org: str, purpose: str | None) -> dict:
        r = await svc.client.post(
            "/v1/children/lookup",
            json={"id_number": WANG.id},
            headers=tokens.headers(role, org, purpose=purpose),
        )
        assert r.status_code == 200, r.text
        return r.json()

    masked = await look("bureau", BUREAU, None)
    assert (
        masked["unmasked"] is False
        and masked["name"] == "王**"
        and masked["id_number"] == WANG.id[:6] + "********" + WANG.id[-4:]
    )
    assert masked["guardian_phone"] != WANG.phone and WANG.phone not in str(masked)
    assert all(a["value"] != WANG.name for a in masked["provenance"])
    full = await look("bureau", BUREAU, "verification of enrollment")
    assert full["unmasked"] is True and full["name"] == WANG.name and full["id_number"] == WANG.id
    inspector = await look("inspector", INSPECTOR, "supervision")
    assert inspector["unmasked"] is False and inspector["id_number"] != WANG.id
    town = await look("town", DIANZI_TOWN, "order to correct")
    assert town["id_number"] == WANG.id
    poverty = await look("dept_poverty", "370406D03", "update our data")
    assert poverty["unmasked"] is False


async def test_every_read_of_personal_data_is_audited(start_service, tokens):
    svc = await start_service("registry")
    ids = await _setup(svc, tokens)
    before = len(await _audit(svc))
    h = tokens.headers("town", DIANZI_TOWN, purpose="home visit planning")
    page = (await svc.client.get("/v1/children", headers=h)).json()
    child_id = page["items"][0]["id"]
    await svc.client.get(f"/v1/children/{child_id}", headers=h)
    await svc.client.post("/v1/children/lookup", json={"id_number": WANG.id}, headers=h)
    entries = (await _audit(svc))[before:]
    assert [e["action"] for e in entries] == ["list", "read", "lookup"]
    assert set(entries[0]["resource_ids"].split(",")) == {c["id"] for c in page["items"]}
    assert entries[1]["resource_ids"] == child_id
    assert all(e["purpose"] == "home visit planning" and e["actor_org"] == DIANZI_TOWN for e in entries)
    assert all(WANG.id not in str(e) for e in entries)
    batch_id = (await svc.client.get("/v1/feeds/batches", headers=tokens.headers("bureau", BUREAU))).json()[
        "items"
    ][0]["id"]
    await svc.client.get(f"/v1/feeds/batches/{batch_id}/errors", headers=tokens.headers("bureau", BUREAU))
    assert (await _audit(svc))[-1]["resource_type"] == "feed_batch_rows"
    assert ids
