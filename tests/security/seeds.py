"""The small, explicit seeding table of the authorisation matrix: how to create one object per resource.

Each seed creates an object through the service's public API (or, for objects only events create, by
publishing the event the service consumes) inside a given school (and its town); the matrix creates one
in school A and one in school B, then attacks every operation whose path parameter is named ``param``
with the foreign object's id. ``test_every_path_parameter_has_a_seed`` fails when an operation takes a
path parameter that is neither seeded here nor listed in ``UNSEEDED`` with its reason: a new endpoint
gets a line here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from baoxue.contracts.casework import CaseConfirmed
from baoxue.pii.citizen_id import check_character
from baoxue.testing.attacks import ROLE_ORGS

_serial = itertools.count(1)


def fresh_id_number(birth: str = "20160502") -> str:
    """A valid 18-character ID number (Shanting address code, valid check character), new each call."""
    first17 = f"370406{birth}{next(_serial) % 1000:03d}"
    return first17 + check_character(first17)


def police_row(
    id_number: str, phone: str, n: int = 0, address: str = "山东省枣庄市山亭区山城街道西集村5号"
) -> dict[str, str]:
    """One row of a police feed, with the department's Chinese headers, for a child born 2015-09-11
    (``fresh_id_number("20150911")``); ``n`` picks the given name."""
    return {
        "姓名": "王" + "小明红刚丽"[n % 5],
        "身份证号": id_number,
        "性别": "男" if int(id_number[16]) % 2 else "女",
        "出生日期": "2015-09-11",
        "户籍地址": address,
        "类别": "常住",
        "监护人姓名": "王大山",
        "监护人电话": phone,
    }


async def submit_police_feed(
    registry: Any, tokens: Any, rows: list[dict[str, str]], period: str = "2026-09"
) -> dict[str, Any]:
    """Post ``rows`` to the registry as one NDJSON police batch and wait (at most 60 s) until it has
    ended; the batch as ``GET /v1/feeds/batches/{id}`` shows it."""
    police = tokens.headers("dept_police", ROLE_ORGS["dept_police"])
    r = await registry.client.post(
        f"/v1/feeds/police/{period}/batches",
        content="".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode(),
        headers={**police, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code in (200, 202), r.text[:300]
    deadline = time.monotonic() + 60
    while True:
        batch: dict[str, Any] = (
            await registry.client.get(f"/v1/feeds/batches/{r.json()['id']}", headers=police)
        ).json()
        if batch.get("status") not in ("queued", "running"):
            return batch
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.1)


def school_case(student_id: str, id_number: str) -> dict[str, Any]:
    """The body of a case a school in ``ROLE_ORGS`` opens by hand for a student, with the ID number."""
    return {
        "school_code": ROLE_ORGS["school"],
        "hukou_town": ROLE_ORGS["town"],
        "student_id": student_id,
        "reason": "learning_weariness",
        "analysis": "连续三周未到校",
        "responsible_person": "班主任",
        "planned_measures": ["家访"],
        "detected_on": "2026-11-20",
        "id_number": id_number,
    }


@dataclass
class SeedContext:
    """What a seed's ``create`` may use: the running service, the token minter, an event publisher."""

    svc: Any
    tokens: Any
    publisher: Any


@dataclass(frozen=True)
class Seed:
    service: str
    path: str
    role: str
    body: Callable[[str, str], dict[str, Any]]  # (school code, town code) → request body
    param: str  # the path parameter naming such objects, e.g. "case_id"
    id_field: str = "id"
    # Creation other than one POST by ``role`` of the school: (context, school, town) → the object's id.
    create: Callable[[SeedContext, str, str], Awaitable[str]] | None = None
    # The role whose caller of school A (or its town, district) reads its own object in the control.
    reader: str = "school"
    # Callers that hold school A (or its town) but not school B; None: the matrix's narrow callers.
    callers: dict[str, str] | None = None


SEEDS: list[Seed] = [
    Seed(
        "casework",
        "/v1/cases",
        "school",
        lambda school, town: {
            "school_code": school,
            "hukou_town": town,
            "student_id": f"stu-{next(_serial)}",
            "reason": "learning_weariness",
            "analysis": "连续三周未到校",
            "responsible_person": "班主任",
            "planned_measures": ["家访"],
            "detected_on": "2026-11-20",
        },
        "case_id",
    ),
    Seed(
        "enrollment",
        "/v1/students",
        "school",
        lambda school, town: {
            "school_code": school,
            "grade": 4,
            "id_number": (idn := fresh_id_number()),
            "student_number": "G" + idn,
        },
        "student_id",
    ),
]


# ---- registry: children (by hukou town) and feed batches (by department) ----------------------------

_TOWN_ADDRESS = {
    "370406001": "山东省枣庄市山亭区山城街道西集村5号",
    "370406101": "山东省枣庄市山亭区店子镇前庄村12号",
}


async def _police_batch(
    ctx: SeedContext, town: str, *, department: str = "police", idn: str | None = None, **over: str
) -> str:
    """A one-row feed batch (police unless told) naming a child with hukou in ``town``; waits until it
    is applied."""
    idn = idn or fresh_id_number()
    row = {
        "姓名": "种子儿童",
        "身份证号": idn,
        "性别": "男" if int(idn[16]) % 2 else "女",
        "出生日期": f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}",
        "户籍地址": _TOWN_ADDRESS[town],
        "类别": "常住",
    } | over
    police = ctx.tokens.headers(f"dept_{department}", ROLE_ORGS[f"dept_{department}"])
    r = await ctx.svc.client.post(
        f"/v1/feeds/{department}/2026-09/batches",
        content=(json.dumps(row, ensure_ascii=False) + "\n").encode(),
        headers={**police, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code in (200, 202), r.text[:300]
    batch_id = str(r.json()["id"])
    deadline = time.monotonic() + 60
    while True:
        b = (await ctx.svc.client.get(f"/v1/feeds/batches/{batch_id}", headers=police)).json()
        if b.get("status") not in ("queued", "running"):
            assert b.get("status") == "completed" and b.get("accepted") == 1, b
            return batch_id
        assert time.monotonic() < deadline, b
        await asyncio.sleep(0.1)


async def _registry_child(ctx: SeedContext, school: str, town: str) -> str:
    await _police_batch(ctx, town)
    r = await ctx.svc.client.get(
        "/v1/children",
        params={"age_min": 0, "age_max": 30, "hukou_town": town},
        headers=ctx.tokens.headers("town", town, purpose="authorisation matrix"),
    )
    assert r.status_code == 200, r.text[:300]
    items = r.json()["items"]
    assert len(items) == 1, items  # the matrix seeds one child per town
    return str(items[0]["id"])


async def _registry_batch(ctx: SeedContext, school: str, town: str) -> str:
    return await _police_batch(ctx, town)


async def _registry_review_item(ctx: SeedContext, school: str, town: str) -> str:
    """A name conflict (police and poverty name one child of ``town`` differently): a review item."""
    idn = fresh_id_number()
    await _police_batch(ctx, town, idn=idn)
    await _police_batch(ctx, town, department="poverty", idn=idn, 姓名="种子孩子", 类别="建档立卡")
    bureau = ctx.tokens.headers("bureau", ROLE_ORGS["bureau"])
    r = await ctx.svc.client.get(
        "/v1/review-items", params={"kind": "conflict", "limit": 200}, headers=bureau
    )
    assert r.status_code == 200, r.text[:300]
    ids = [i["id"] for i in r.json()["items"] if i["hukou_town"] == town]
    assert len(ids) == 1, r.json()  # the matrix seeds one item per town
    return str(ids[0])


# ---- notify: escalations (opened by casework's CaseConfirmed) -----------------------------------------


async def _notify_escalation(ctx: SeedContext, school: str, town: str) -> str:
    case_id = str(uuid.uuid4())
    await ctx.publisher.publish(
        CaseConfirmed(
            case_id=case_id,
            child_id=str(uuid.uuid4()),
            school_code=school,
            hukou_town=town,
            state="confirmed",
            reason="learning_weariness",
            report_due=dt.date(2026, 12, 31),
        ),
        subject=case_id,
    )
    bureau = ctx.tokens.headers("bureau", ROLE_ORGS["bureau"], purpose="authorisation matrix")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = await ctx.svc.client.get("/v1/escalations", headers=bureau)
        assert r.status_code == 200, r.text[:300]
        for item in r.json()["items"]:
            if item.get("case_id") == case_id:
                return str(item["id"])
        await asyncio.sleep(0.1)
    raise AssertionError("notify opened no escalation for the confirmed case")


SEEDS += [
    Seed("registry", "/v1/feeds", "dept_police", dict, "child_id", create=_registry_child, reader="town"),
    Seed(
        "registry",
        "/v1/feeds",
        "dept_police",
        dict,
        "batch_id",
        create=_registry_batch,
        reader="dept_police",
        # Feed batches belong to departments: another department (and every narrow caller) must not
        # tell a police batch from a missing one.
        callers={
            "dept_poverty": ROLE_ORGS["dept_poverty"],
            "dept_civil": ROLE_ORGS["dept_civil"],
            "school": "37040600101001",
            "town": "370406001",
        },
    ),
    # Review items: district roles only (bureau decides, inspectors read); every narrow caller must not
    # tell another town's item from a missing one.
    Seed(
        "registry",
        "/v1/review-items",
        "bureau",
        dict,
        "item_id",
        create=_registry_review_item,
        reader="bureau",  # GET /v1/review-items/{item_id}: the bureau reads its own district's item
    ),
    Seed(
        "notify",
        "/v1/documents",
        "school",
        lambda school, town: {
            "kind": "admission_notice",
            "fields": {"report_date": "2027-08-30", "school_year": "2027—2028"},
        },
        "document_id",
    ),
    Seed("notify", "/v1/escalations", "bureau", dict, "escalation_id", create=_notify_escalation),
]

# Path parameters that are not (yet) seeded, with the reason. Anything else without a seed fails
# test_every_path_parameter_has_a_seed. "not seeded yet" entries are gaps, listed in docs/security.md.
UNSEEDED: dict[tuple[str, str], str] = {
    ("registry", "department"): "a department code, not an object (feed:submit is checked per department)",
    ("registry", "period"): "a period, not an object",
    ("casework", "semester"): "a semester, not an object",
    ("casework", "school_code"): "not seeded yet: another school's roster / census (write checks)",
    ("registry", "job_id"): "not seeded yet: jobs are the library's (owner or bureau only)",
    ("enrollment", "job_id"): "not seeded yet: jobs are the library's (owner or bureau only)",
    ("casework", "job_id"): "not seeded yet: jobs are the library's (owner or bureau only)",
    ("notify", "job_id"): "not seeded yet: jobs are the library's (owner or bureau only)",
    ("registry", "correction_id"): "not seeded yet: hukou corrections (police only)",
    ("registry", "merge_id"): "not seeded yet: child merges (bureau review)",
    ("casework", "plan_id"): "not seeded yet: support plans",
    ("casework", "visit_id"): "not seeded yet: visits",
    ("enrollment", "campaign_id"): "not seeded yet: verification campaigns (district-wide)",
    ("enrollment", "application_id"): "not seeded yet: deferral applications",
    ("enrollment", "placement_id"): "not seeded yet: placements",
    ("enrollment", "transfer_id"): "not seeded yet: transfers",
    ("enrollment", "task_id"): "not seeded yet: verification tasks",
    ("enrollment", "leaver_id"): "not seeded yet: vocational leavers",
    ("notify", "bulletin_id"): "not seeded yet: bulletins (district-wide)",
    ("notify", "recipient_id"): "not seeded yet: e-mail recipients",
    ("notify", "message_id"): "not seeded yet: inbox messages",
    ("notify", "provider_id"): "not seeded yet: blacklist providers",
    ("notify", "referral_id"): "not seeded yet: referrals",
    ("notify", "delivery_id"): "not seeded yet: webhook deliveries",
    ("notify", "report_id"): "not seeded yet: dropout reports (endpoints new on 26 Nov, ~19:20 UTC)",
}
