"""A webhook receiver simulator: another government system that takes Baoxue's signed pushes.

It checks the ``X-Baoxue-Signature`` (HMAC-SHA256 over ``"<t>.<raw body>"`` with the shared secret),
can be told to fail the first N requests (HTTP 503) to exercise retries, and keeps one record per
``X-Baoxue-Delivery`` id (a repeat of an accepted delivery is answered 200 and not recorded again).

    python -m baoxue.fakes.webhook_receiver --port 8191 --secret a-long-random-shared-secret --fail-first 3
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def _valid(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(int(time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts.get("v1", ""), expected)


@dataclass
class ReceiverState:
    secret: str
    fail_first: int = 0
    requests: int = 0
    rejected_signatures: int = 0
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)


def create_app(secret: str, fail_first: int = 0) -> Starlette:
    """The receiver app; its state is on ``app.state.receiver``."""
    state = ReceiverState(secret=secret, fail_first=fail_first)

    async def hook(request: Request) -> JSONResponse:
        state.requests += 1
        body = await request.body()
        if not _valid(state.secret, request.headers.get("X-Baoxue-Signature", ""), body):
            state.rejected_signatures += 1
            return JSONResponse({"error": "bad_signature"}, status_code=401)
        if state.requests <= state.fail_first:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        delivery_id = request.headers.get("X-Baoxue-Delivery", "")
        if delivery_id not in state.accepted:
            state.accepted[delivery_id] = json.loads(body)
        return JSONResponse({"ok": True})

    async def received(_: Request) -> JSONResponse:
        return JSONResponse({"requests": state.requests, "accepted": list(state.accepted.values())})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/received", received)])
    app.state.receiver = state
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(args.secret, args.fail_first), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
