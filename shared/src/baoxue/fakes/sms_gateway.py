"""An SMS gateway simulator (the shape of a typical government SMS platform's HTTP API).

POST /v1/messages   {"to": "13800000000", "sign": "山亭区教体局", "text": "..."}   X-Api-Key: <key>
  → 202 {"message_id": "...", "status": "accepted"}; 401 for a wrong key; 422 for a malformed number
GET  /v1/messages   what it accepted (for tests and the demo)

python -m baoxue.fakes.sms_gateway --port 8190 --api-key dev-sms-key
"""

from __future__ import annotations

import argparse
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_MOBILE = re.compile(r"1[3-9][0-9]{9}")


@dataclass
class GatewayState:
    api_key: str
    fail_first: int = 0
    requests: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


def create_app(api_key: str, fail_first: int = 0) -> Starlette:
    """The simulator app; its state is on ``app.state.gateway``. The first `fail_first` requests get 503."""
    state = GatewayState(api_key=api_key, fail_first=fail_first)

    async def send(request: Request) -> JSONResponse:
        state.requests += 1
        if request.headers.get("X-Api-Key") != state.api_key:
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        if state.requests <= state.fail_first:
            return JSONResponse({"error": "busy"}, status_code=503)
        body = await request.json()
        to, text, sign = body.get("to", ""), body.get("text", ""), body.get("sign", "")
        if not _MOBILE.fullmatch(str(to)) or not text or not sign:
            return JSONResponse({"error": "invalid_message"}, status_code=422)
        message_id = str(uuid.uuid4())
        state.messages.append({"message_id": message_id, "to": to, "sign": sign, "text": text})
        return JSONResponse({"message_id": message_id, "status": "accepted"}, status_code=202)

    async def listing(_: Request) -> JSONResponse:
        return JSONResponse({"messages": state.messages})

    app = Starlette(routes=[Route("/v1/messages", send, methods=["POST"]), Route("/v1/messages", listing)])
    app.state.gateway = state
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="SMS gateway simulator")
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="dev-sms-key")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(args.api_key, args.fail_first), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
