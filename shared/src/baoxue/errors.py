"""RFC 9457 problem details: one error shape for every service, validation errors included.

Raise a :class:`Problem` (or a subclass) anywhere; :func:`install_problem_handlers` renders it as
``application/problem+json`` with a stable ``code``, a ``trace_id``, per-field ``errors``, and the
title in Chinese or English chosen by the request's ``Accept-Language``. Error texts never carry
personal data: they name fields and reason codes, not values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from baoxue.observability import current_trace_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://baoxue.example.gov.cn/problems/"

# code → (English title, Chinese title). Services add their own with register_problem_titles().
_TITLES: dict[str, tuple[str, str]] = {
    "bad_request": ("Bad request", "请求有误"),
    "validation_failed": ("The request is not valid", "请求数据校验未通过"),
    "unauthenticated": ("Authentication required", "需要身份认证"),
    "forbidden": ("Not permitted", "无权执行此操作"),
    "not_found": ("Not found", "未找到"),
    "method_not_allowed": ("Method not allowed", "不支持该请求方法"),
    "conflict": ("Conflict", "与现有数据冲突"),
    "precondition_failed": ("The resource changed since you read it", "数据已被他人修改，请刷新后重试"),
    "precondition_required": ("If-Match header required", "需要提供 If-Match 版本标识"),
    "payload_too_large": ("Payload too large", "提交的数据过大"),
    "unsupported_media_type": ("Unsupported media type", "不支持的数据格式"),
    "idempotency_key_reused": (
        "Idempotency key reused with a different request",
        "幂等键已用于另一个不同的请求",
    ),
    "service_unavailable": ("Service temporarily unavailable", "服务暂时不可用，请稍后重试"),
    "internal_error": ("Internal error", "系统内部错误"),
    "payload_too_deep": ("The request body is nested too deeply", "提交的数据嵌套层级过深"),
    "value_not_storable": ("A value cannot be stored", "提交的数据无法保存（超出范围或含有非法字符）"),
    "purpose_required": ("A stated purpose is required to see this data", "查看此数据需说明用途"),
}


_STATUS_KINDS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "internal_error",
    503: "service_unavailable",
}


def register_problem_titles(titles: Mapping[str, tuple[str, str]]) -> None:
    """Add a service's problem codes with their (English, Chinese) titles."""
    _TITLES.update(titles)


def problem_title(code: str, language: str, fallback: str = "bad_request") -> str:
    en, zh = _TITLES.get(code) or _TITLES.get(fallback) or (code.replace("_", " ").capitalize(), code)
    return zh if language == "zh" else en


class Problem(Exception):
    """An error that becomes a problem-details response.

    ``code`` is stable and machine-readable; ``detail`` is a human sentence without personal data;
    ``errors`` lists per-field reasons as ``{"field": ..., "code": ..., "message": ...}``.
    """

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or code or self.code)
        # The class's general code titles a specific code that has no title of its own
        # (token_expired → "Authentication required").
        self.kind = self.code
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
            if code is None or code not in _TITLES:
                self.kind = _STATUS_KINDS.get(status, self.kind)
        self.detail = detail
        self.errors = [dict(e) for e in errors] if errors else []
        self.headers = dict(headers or {})
        self.extensions = extensions


class NotFound(Problem):
    status, code = 404, "not_found"


class Conflict(Problem):
    status, code = 409, "conflict"


class Forbidden(Problem):
    status, code = 403, "forbidden"


class Unauthenticated(Problem):
    status, code = 401, "unauthenticated"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="baoxue"'})
        super().__init__(detail, **kwargs)


class PreconditionFailed(Problem):
    status, code = 412, "precondition_failed"


class ServiceUnavailable(Problem):
    status, code = 503, "service_unavailable"


def preferred_language(request: Request) -> str:
    """'zh' or 'en' from Accept-Language (q-values honoured); Chinese by default."""
    header = request.headers.get("accept-language", "")
    best, best_q = "zh", 0.0
    for part in header.split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = lang.strip().lower()
        if q > best_q and (lang.startswith("zh") or lang.startswith("en")):
            best, best_q = lang[:2], q
    return best


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    language = preferred_language(request)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": problem_title(problem.code, language, problem.kind),
        "status": problem.status,
        "code": problem.code,
        "instance": request.url.path,
        "trace_id": current_trace_id(),
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    body.update(problem.extensions)
    headers = {"Content-Language": language, **problem.headers}
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


_VALIDATION_MESSAGES_ZH = {
    "missing": "缺少必填字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "date_from_datetime_parsing": "应为日期",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "datetime_parsing": "应为带时区的时间（ISO 8601）",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "json_invalid": "JSON 格式错误",
    "extra_forbidden": "不允许的字段",
    "null_not_allowed": "该字段不能清空（不可为 null），不修改时请省略",
}


_CHOICE_ERRORS = ("literal_error", "enum")
_QUOTED = re.compile(r"'([^']*)'")


def _allowed_values(err: Mapping[str, Any]) -> list[str]:
    """The values a closed list (Literal, Enum) allows, from the error's context (``'a', 'b' or 'c'``)."""
    expected = (err.get("ctx") or {}).get("expected")
    return _QUOTED.findall(expected) if isinstance(expected, str) else []


def _field_errors(exc: RequestValidationError, language: str) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        kind = str(err.get("type", "invalid"))
        message = (
            _VALIDATION_MESSAGES_ZH.get(kind, err.get("msg", "")) if language == "zh" else err.get("msg")
        )
        # The offending input is deliberately not echoed back: it may be an ID number or a phone.
        entry: dict[str, Any] = {"field": ".".join(loc) or "body", "code": kind, "message": message}
        allowed = _allowed_values(err) if kind in _CHOICE_ERRORS else []
        if allowed:  # a closed code list: name its codes (in Chinese too), and list them for programs
            entry["allowed"] = allowed
            if language == "zh":
                entry["message"] = f"{message}（可选：{'、'.join(allowed)}）"
        out.append(entry)
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` — ours, FastAPI's validation, Starlette's HTTP, unexpected — as a problem."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc, preferred_language(request))
        return problem_response(request, Problem(status=422, code="validation_failed", errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            412: "precondition_failed",
            413: "payload_too_large",
            415: "unsupported_media_type",
            503: "service_unavailable",
        }.get(exc.status_code, "bad_request")
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
        problem = Problem(detail, status=exc.status_code, code=code, headers=exc.headers or {})
        return problem_response(request, problem)

    @app.exception_handler(StatementError)
    async def _database(request: Request, exc: StatementError) -> JSONResponse:
        # Registered for the SQLAlchemy error class itself (not Exception), so Starlette's exception
        # middleware answers and nothing is re-raised to the server.
        if isinstance(exc, DataError) or isinstance(exc.orig, (OverflowError, ValueError)):
            # A value the database cannot store or compare (NUL characters, an integer out of range):
            # the client's input, not our failure. The value itself is not echoed.
            problem = Problem(
                "A value in the request cannot be stored (out of range, or contains NUL characters).",
                status=422,
                code="value_not_storable",
            )
        elif isinstance(exc, (OperationalError, InterfaceError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            log.warning("database unavailable", extra={"error_type": type(exc).__name__})
            problem = ServiceUnavailable(
                "The database is not reachable; nothing was saved. Retry later.",
                headers={"Retry-After": "5"},
            )
        else:
            log.error("database error", extra={"error_type": type(exc).__name__})
            problem = Problem(status=500, code="internal_error")
        return problem_response(request, problem)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # e.g. sqlite3 binding an integer beyond 64 bits: the client's input, not our failure.
        problem = Problem("A number in the request is out of range.", status=422, code="value_not_storable")
        return problem_response(request, problem)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        problem = Problem("The request body is nested too deeply.", status=422, code="payload_too_deep")
        return problem_response(request, problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(request, Problem(status=500, code="internal_error"))
