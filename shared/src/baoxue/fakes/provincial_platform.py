"""A simulator of the provincial student registry platform (省学籍平台), for tests and the demo.

A real FastAPI app with in-memory state behind real HTTP:
- ``GET /api/v1/student-records?after=&limit=``: export student records in batches; each batch carries a
  ``batch_id`` that is the same whenever the same page is asked for again, and ``next_after``.
- ``POST /api/v1/status-pushes``: receive status changes and annotations; idempotent by ``batch_id``
  (a repeated batch is acknowledged but not applied twice).
- ``/_control/...``: seed records, make the next requests fail or slow down, read what was received.

Run it: ``python -m baoxue.fakes.provincial_platform --port 8190``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field


class PlatformRecord(BaseModel):
    record_id: str
    student_number: str
    id_number: str
    school_code: str
    province_code: str = "37"
    status: Literal["enrolled", "suspended", "transferred_out", "dropped_out", "graduated", "deceased"] = (
        "enrolled"
    )


class PushItem(BaseModel):
    student_number: str
    status: str | None = None
    annotation: dict[str, Any] | None = None


class PushBatch(BaseModel):
    batch_id: str = Field(min_length=1, max_length=120)
    items: list[PushItem]


class FailureRule(BaseModel):
    """``fail_next`` requests answer 503; ``delay_seconds`` slows an export before it answers, and a push
    after it was applied (the acknowledgement is late)."""

    operation: Literal["export", "push"]
    fail_next: int = 0
    delay_seconds: float = 0.0


@dataclass
class PlatformState:
    records: list[PlatformRecord] = field(default_factory=list)
    pushes: dict[str, list[PushItem]] = field(default_factory=dict)
    push_requests: int = 0
    export_requests: int = 0
    fail_next: dict[str, int] = field(default_factory=lambda: {"export": 0, "push": 0})
    delay: dict[str, float] = field(default_factory=lambda: {"export": 0.0, "push": 0.0})


def create_app(state: PlatformState | None = None) -> FastAPI:
    app = FastAPI(title="Provincial student registry platform (simulator)")
    st = state or PlatformState()
    app.state.platform = st

    async def gate(operation: str) -> None:
        if operation == "export" and st.delay[operation]:
            await asyncio.sleep(st.delay[operation])
        if st.fail_next[operation] > 0:
            st.fail_next[operation] -= 1
            raise HTTPException(status_code=503, detail="simulated outage")

    @app.get("/api/v1/student-records")
    async def export(after: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=5000)) -> dict[str, Any]:
        st.export_requests += 1
        await gate("export")
        page = st.records[after : after + limit]
        batch_id = (
            "exp-"
            + hashlib.sha256(f"{after}:{limit}:{','.join(r.record_id for r in page)}".encode()).hexdigest()[
                :24
            ]
        )
        next_after = after + len(page) if after + len(page) < len(st.records) else None
        return {"batch_id": batch_id, "records": [r.model_dump() for r in page], "next_after": next_after}

    @app.post("/api/v1/status-pushes")
    async def push(batch: PushBatch) -> dict[str, Any]:
        st.push_requests += 1
        await gate("push")
        duplicate = batch.batch_id in st.pushes
        if not duplicate:
            st.pushes[batch.batch_id] = batch.items
        if st.delay["push"]:  # applied, but the acknowledgement is slow (a client may give up and retry)
            await asyncio.sleep(st.delay["push"])
        return {"batch_id": batch.batch_id, "accepted": len(batch.items), "duplicate": duplicate}

    @app.post("/_control/records")
    async def seed(records: list[PlatformRecord]) -> dict[str, int]:
        st.records.extend(records)
        return {"records": len(st.records)}

    @app.post("/_control/failures")
    async def failures(rule: FailureRule) -> dict[str, Any]:
        st.fail_next[rule.operation] = rule.fail_next
        st.delay[rule.operation] = rule.delay_seconds
        return {"fail_next": st.fail_next, "delay": st.delay}

    @app.get("/_control/pushes")
    async def pushes() -> dict[str, Any]:
        return {
            "batches": {k: [i.model_dump() for i in v] for k, v in st.pushes.items()},
            "requests": st.push_requests,
        }

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8190)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
