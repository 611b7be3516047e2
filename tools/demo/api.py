"""The demo's HTTP client: one token per actor, problem-aware calls, cursor paging, job polling.

The driver is a client like any other: it mints development tokens from the local key (the demo
identity provider) and talks to the four services over HTTP. It never imports a service package.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from baoxue.auth.tokens import mint_token
from baoxue.catalog import DEFAULT_PORTS

RETRIES_ON_503 = 6
KEEPALIVE_EXPIRY_SECONDS = 2.0
"""An idle pooled connection is dropped after this long: well under uvicorn's keep-alive timeout
(5 s), so the client never reuses a connection the server is closing at that moment (the request is
then lost with "Server disconnected without sending a response")."""
RETRIES_ON_DISCONNECT = 2
SERVICES = ("registry", "enrollment", "casework", "notify")
T = TypeVar("T")
R = TypeVar("R")


class ApiError(RuntimeError):
    """A call answered with an unexpected status; carries the RFC 9457 problem's code when there is one."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        self.code = body.get("code") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{method} {path} → {status} {self.code or ''}: {detail}")


def default_urls() -> dict[str, str]:
    """The services where ``make run`` puts them."""
    return {name: f"http://127.0.0.1:{DEFAULT_PORTS[name]}" for name in SERVICES}


@dataclass(frozen=True)
class Actor:
    """Who makes a call: a role and an organisation code (the token's ``roles`` and ``org``)."""

    role: str
    org: str


BUREAU = Actor("bureau", "370406D01")
POLICE = Actor("dept_police", "370406D02")
JUSTICE = Actor("justice", "370406D06")
DEPARTMENT_ACTORS = {
    "police": POLICE,
    "poverty": Actor("dept_poverty", "370406D03"),
    "dpf": Actor("dept_dpf", "370406D04"),
    "civil": Actor("dept_civil", "370406D05"),
}


class Api:
    """Calls to the four services as any actor; thread-safe (one pooled client per service)."""

    def __init__(
        self, urls: dict[str, str], key_file: Path, *, issuer: str, audience: str, workers: int = 8
    ) -> None:
        self.urls = urls
        self.key_file = key_file
        self.issuer = issuer
        self.audience = audience
        self.workers = workers
        limits = httpx.Limits(
            max_connections=workers * 2,
            max_keepalive_connections=workers * 2,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        self._clients = {
            name: httpx.Client(base_url=url, timeout=120.0, limits=limits) for name, url in urls.items()
        }
        self._tokens: dict[Actor, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def token(self, actor: Actor) -> str:
        """A cached token for ``actor``, renewed well before it expires."""
        with self._lock:
            cached = self._tokens.get(actor)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token = mint_token(
                self.key_file,
                subject=f"demo-{actor.role}-{actor.org}",
                roles=[actor.role],
                org=actor.org,
                issuer=self.issuer,
                audience=self.audience,
                ttl=dt.timedelta(hours=2),
            )
            self._tokens[actor] = (token, time.monotonic() + 3600)
            return token

    def call(
        self,
        service: str,
        method: str,
        path: str,
        actor: Actor,
        *,
        expect: tuple[int, ...] = (200, 201, 202),
        purpose: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; raises :class:`ApiError` unless the status is in ``expect``."""
        headers = {"Authorization": f"Bearer {self.token(actor)}", **kwargs.pop("headers", {})}
        if method == "POST":
            # One key per logical call, reused by its retries: a write that was saved although its
            # answer was lost or a 503 is replayed instead of done twice (where the service honours it).
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        if purpose:
            headers["X-Access-Purpose"] = purpose
        for attempt in range(RETRIES_ON_503 + 1):
            response = self._send(service, method, "/v1" + path, headers, kwargs)
            if response.status_code != 503 or attempt == RETRIES_ON_503:
                break
            # "nothing was saved, retry later" (e.g. SQLite busy under many concurrent writers)
            time.sleep(float(response.headers.get("Retry-After") or 0.2 * 2**attempt))
        if response.status_code not in expect:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise ApiError(method, path, response.status_code, body)
        return response

    def _send(
        self, service: str, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One request; a GET whose connection the server closed before answering is sent again on a
        fresh connection. A write is not: not every create honours ``Idempotency-Key``, and a server
        that fell over mid-request may have saved it."""
        for attempt in range(RETRIES_ON_DISCONNECT + 1):
            try:
                return self._clients[service].request(method, url, headers=headers, **kwargs)
            except httpx.RemoteProtocolError:
                if method != "GET" or attempt == RETRIES_ON_DISCONNECT:
                    raise
        raise AssertionError("unreachable")

    def operations(self, service: str) -> set[tuple[str, str]]:
        """The (method, path) pairs the service's OpenAPI document offers, e.g. ("post", "/v1/students")."""
        response = self._clients[service].get("/openapi.json")
        response.raise_for_status()
        paths: dict[str, dict[str, Any]] = response.json().get("paths", {})
        return {(method, path) for path, ops in paths.items() for method in ops}

    def get(self, service: str, path: str, actor: Actor, **kwargs: Any) -> Any:
        return self.call(service, "GET", path, actor, **kwargs).json()

    def post(self, service: str, path: str, actor: Actor, **kwargs: Any) -> Any:
        return self.call(service, "POST", path, actor, **kwargs).json()

    def put(self, service: str, path: str, actor: Actor, **kwargs: Any) -> Any:
        return self.call(service, "PUT", path, actor, **kwargs).json()

    def pages(
        self, service: str, path: str, actor: Actor, *, params: dict[str, Any] | None = None, **kw: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list (``items`` + ``next_cursor``)."""
        query = {"limit": 500, **(params or {})}
        while True:
            page = self.get(service, path, actor, params=query, **kw)
            yield from page["items"]
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    def pages_split(
        self, service: str, path: str, actor: Actor, parts: list[dict[str, Any]], **kw: Any
    ) -> list[list[dict[str, Any]]]:
        """Every item of each of ``parts`` (disjoint filters of one list), the parts paged concurrently:
        a cursor list is read one page after the other, so a long list split in parts reads faster."""
        return self.parallel(
            lambda params: list(self.pages(service, path, actor, params=params, **kw)), parts
        )

    def count(self, service: str, path: str, actor: Actor, **kwargs: Any) -> int:
        return sum(1 for _ in self.pages(service, path, actor, **kwargs))

    def wait_job(self, service: str, job_id: str, actor: Actor, *, timeout: float = 1800.0) -> dict[str, Any]:
        """Poll ``/v1/jobs/{id}`` until the job ends; raises unless it succeeded."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.get(service, f"/jobs/{job_id}", actor)
            if job["status"] == "succeeded":
                return job
            if job["status"] in ("failed", "interrupted"):
                raise RuntimeError(f"{service} job {job_id} {job['status']}: {job.get('error_code')}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        raise TimeoutError(f"{service} job {job_id} did not finish in {timeout:.0f}s")

    def parallel(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """``fn`` over ``items`` on the worker pool (order kept); the first failure propagates."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(fn, items))


def eventually(check: Callable[[], T | None], *, what: str, timeout: float = 300.0, every: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy (events travel asynchronously between services)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def until_known(call: Callable[[], T], *, codes: tuple[str, ...], timeout: float = 120.0) -> T:
    """Retry ``call`` while it fails with one of ``codes``: a service that learns about an object from
    another's events may not know it yet (eventual consistency between services)."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return call()
        except ApiError as exc:
            if exc.code not in codes or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 1.5, 3.0)
