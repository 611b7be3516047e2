"""What a service is made of (:class:`ServiceSpec`) and what it holds while it runs (:class:`ServiceContext`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import MetaData

from baoxue.audit import AuditLog
from baoxue.auth.roles import RolePolicy
from baoxue.auth.tokens import TokenVerifier
from baoxue.db import Database
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, Subscription
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay
from baoxue.idempotency import IdempotencyStore
from baoxue.jobs import JobRunner, JobWork
from baoxue.orgs.directory import OrgDirectory
from baoxue.pii.crypto import BlindIndex, FieldCipher
from baoxue.pii.reindex import BlindIndexColumn
from baoxue.pii.rotation import EncryptedColumn
from baoxue.settings import ServiceSettings
from baoxue.tables import MechanismTables

# A code list: code → (English label, Chinese label).
CodeList = Mapping[str, tuple[str, str]]


@dataclass
class ServiceSpec:
    """Everything the library needs to run one service. Each service exports one as ``main.SERVICE``."""

    name: str
    title: str
    description: str
    settings_cls: type[ServiceSettings]
    metadata: MetaData
    tables: MechanismTables
    policy: RolePolicy
    routers: Sequence[APIRouter]
    migrations_dir: Path
    code_lists: Mapping[str, CodeList] = field(default_factory=dict)
    subscriptions: Callable[[ServiceContext], list[Subscription]] = lambda _ctx: []
    background: Sequence[Callable[[ServiceContext], Awaitable[None]]] = ()
    on_startup: Sequence[Callable[[ServiceContext], Awaitable[None]]] = ()
    job_resumers: Mapping[str, Callable[[ServiceContext, dict[str, Any]], Awaitable[JobWork | None]]] = field(
        default_factory=dict
    )
    """Per job kind: finishes an interrupted job of that kind at start-up (see ``JobRunner.resume_with``)."""
    problem_titles: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    encrypted_columns: Sequence[EncryptedColumn] = ()
    """Every column holding a cipher token (``baoxue pii rotate``; ``pii_columns.py`` of each service)."""
    blind_index_columns: Sequence[BlindIndexColumn] = ()
    """Every column holding blind indexes (``baoxue pii reindex``; ``pii_columns.py`` of each service)."""
    version: str = "0.1.0"


@dataclass
class ServiceContext:
    """The running service's collaborators, on ``app.state.ctx``; route dependencies read them from here."""

    spec: ServiceSpec
    settings: ServiceSettings
    db: Database
    bus: EventBus
    outbox: Outbox
    audit: AuditLog
    jobs: JobRunner
    idempotency: IdempotencyStore
    cipher: FieldCipher
    blind_index: BlindIndex
    directory: OrgDirectory
    verifier: TokenVerifier
    relay: OutboxRelay | None = None
    consumers: ConsumerRunner | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
