"""Database access: one async engine per service, the same code on SQLite and PostgreSQL.

- URLs are normalised to the async drivers (``sqlite+aiosqlite``, ``postgresql+psycopg``).
- SQLite runs in WAL mode with foreign keys on and a busy timeout; a SAVEPOINT (``begin_nested``)
  before a transaction's first write opens the transaction first, so it never commits on its own.
  A connection the pool closes or terminates (one whose task was cancelled mid-statement) is rolled
  back first, so a cancelled writer cannot keep the database's write lock.
- PostgreSQL connections are pinged at checkout only after they sat idle in the pool (a round trip per
  request otherwise); a connection that died while recently used fails its first statement, which
  invalidates it (and the pool's older ones), so the request gets a 503 and the next one reconnects.
- Times are stored in UTC; :class:`UTCDateTime` gives back aware datetimes on both engines.
- Each service declares its tables on its own SQLModel base (:func:`model_base`) so library tables
  such as ``outbox`` exist once per service, not once per process.
- The request dependency commits or rolls back; service functions never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from sqlalchemy import DateTime, MetaData, Select, Table, event, false, text, update
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn
from sqlmodel import SQLModel

# Explicit constraint names: migrations stay stable and SQLite batch mode can alter constraints.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def model_base(name: str) -> type[SQLModel]:
    """A SQLModel base class with its own metadata, for one service's tables.

    >>> RegistryModel = model_base("RegistryModel")
    >>> class Child(RegistryModel, table=True): ...
    """
    reg = registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))
    base: type[SQLModel] = type(
        name, (SQLModel,), {"__module__": __name__, "__init__": _init_with_defaults}, registry=reg
    )
    return base


def _init_with_defaults(self: SQLModel, **data: Any) -> None:
    """Fill the fields left out of ``data`` that have a default factory, then construct as SQLModel does.

    SQLModel's table constructor asks pydantic for each missing field's default, and pydantic inspects
    the factory's signature every time (``inspect.signature``; for ``list`` and ``dict`` that parses
    their text signature or raises): 0.1–0.6 ms per row object, a fifth of B4's visit create (27 Nov,
    bench/notes/b4.md). The factories are known once per class; Baoxue's take no arguments."""
    for field, factory in _default_factories(type(self)).items():
        if field not in data:
            data[field] = factory()
    SQLModel.__init__(self, **data)


_DEFAULT_FACTORIES: dict[type[SQLModel], dict[str, Callable[[], Any]]] = {}


def _default_factories(cls: type[SQLModel]) -> dict[str, Callable[[], Any]]:
    found = _DEFAULT_FACTORIES.get(cls)
    if found is None:
        found = {}
        for field, info in cls.model_fields.items():
            if info.default_factory is None:
                continue
            if info.default_factory_takes_validated_data:
                raise TypeError(f"{cls.__name__}.{field}: a default factory must take no arguments")
            found[field] = info.default_factory  # type: ignore[assignment]
        _DEFAULT_FACTORIES[cls] = found
    return found


async def hold_transaction_lock(
    session: AsyncSession, name: str, *, shared: bool = False, sqlite_write_lock_on: Table | None = None
) -> None:
    """Serialise, until the end of their transactions, the transactions that take the lock ``name``.

    PostgreSQL: an advisory transaction lock on a key derived from ``name`` (``shared`` holders do not
    wait for each other, only for an exclusive one). SQLite has one writer for the whole database: with
    ``sqlite_write_lock_on`` (any table of the service) the write lock is taken now, by a write that changes nothing,
    so that what the transaction reads next is already under it; without, nothing is done there."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await session.execute(text(f"SELECT {function}(:key)"), {"key": key})
    elif sqlite_write_lock_on is not None:
        column = next(iter(sqlite_write_lock_on.primary_key.columns))
        await session.execute(update(sqlite_write_lock_on).where(false()).values({column: column}))


ConflictInsert = PostgresInsert | SQLiteInsert
"""An INSERT that can say what happens on a conflict (``on_conflict_do_nothing`` /
``on_conflict_do_update``, ``excluded``): the two dialects' constructs have the same methods."""


def conflict_insert(on: AsyncSession | str, table: Any) -> ConflictInsert:
    """``INSERT INTO table`` in the dialect of ``on`` (a session, or a dialect name such as
    ``Database.dialect``), so that ``ON CONFLICT`` can be added: PostgreSQL's construct, else SQLite's."""
    dialect = on if isinstance(on, str) else on.get_bind().dialect.name
    return postgres_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    Naive input is refused rather than guessed: a naive time from a client is a bug to surface.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Baoxue stores aware UTC times only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def async_url(url: str) -> str:
    """Map a plain database URL onto Baoxue's async drivers."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (for Alembic and administrative commands)."""
    u = make_url(async_url(url))
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    return u.render_as_string(hide_password=False)


SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite statement waits for another connection's write lock before "database is locked"
(then a request answers 503 with Retry-After: nothing was saved)."""


SQLITE_PATIENT_BUSY_TIMEOUT_MS = 600_000
"""How long background work (:func:`patient_writes`: jobs) waits for the write lock instead: four
departments' 60,000-row feeds merged one after the other hold it for longer than a request should wait,
and a job that gave up after 10 s failed a clerk's batch, or, when marking it failed met the lock too,
left it "running" for good."""
_PATIENT: ContextVar[bool] = ContextVar("baoxue_db_patient", default=False)
_BUSY_TIMEOUT = "baoxue_busy_timeout_ms"


@contextmanager
def patient_writes() -> Iterator[None]:
    """Within (and in tasks started within), SQLite connections wait :data:`SQLITE_PATIENT_BUSY_TIMEOUT_MS`
    for another connection's write lock, not :data:`SQLITE_BUSY_TIMEOUT_MS`. For background work that
    nobody is waiting on to answer; a request keeps the short wait and its 503. PostgreSQL: no effect
    (row and advisory locks wait without a timeout there)."""
    token = _PATIENT.set(True)
    try:
        yield
    finally:
        _PATIENT.reset(token)


def _sqlite_busy_timeout_at_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Give a pooled SQLite connection the busy timeout its borrower needs (set only when it changes)."""
    wanted = SQLITE_PATIENT_BUSY_TIMEOUT_MS if _PATIENT.get() else SQLITE_BUSY_TIMEOUT_MS
    if record.info.get(_BUSY_TIMEOUT, SQLITE_BUSY_TIMEOUT_MS) != wanted:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={wanted}")
        cursor.close()
        record.info[_BUSY_TIMEOUT] = wanted


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")  # the busy timeout: the driver's ``timeout`` (create_engine)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: Any, _name: str) -> None:
    """Open the driver's transaction before a SAVEPOINT that would otherwise start one (SQLite).

    pysqlite (and aiosqlite) begin a transaction only before INSERT/UPDATE/DELETE. A SAVEPOINT
    issued before the request's first write therefore started the transaction itself, and its
    RELEASE then COMMITTED it (SQLite: releasing the outermost savepoint is a commit): a row written
    in ``session.begin_nested()`` was saved even when the request failed after it — a 503 "nothing
    was saved" for a record that was, whose Idempotency-Key row was rolled back, so the retry got 409.
    With ``BEGIN`` first, the savepoint nests inside the request's transaction, which commits or
    rolls back as a whole. A connection whose driver transaction is already open (or whose service
    emits its own ``BEGIN IMMEDIATE``) is left alone.
    """
    driver = conn.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        conn.exec_driver_sql("BEGIN")


def _queue_rollback(dbapi_connection: Any) -> None:
    """Queue a ROLLBACK on an aiosqlite connection's own thread, ahead of whatever comes next (its close).

    A task cancelled during a statement makes SQLAlchemy invalidate its connection (``CancelledError``
    is an exit exception), and the pool then terminates it: aiosqlite closes the sqlite3 connection
    without a rollback. While the cancelled statement's cursor is still referenced (by the
    ``CancelledError``'s traceback, kept by the cancelled task), ``sqlite3_close_v2`` cannot finish and
    leaves a "zombie" connection that keeps its open transaction — and with it the WAL write lock,
    until the garbage collector frees the cursor: every other writer got "database is locked". The
    rollback runs on the connection's worker thread (in order, before the close), without awaiting, so
    it also works where the pool closes a connection outside the event loop (garbage collection).
    """
    driver = getattr(dbapi_connection, "_connection", None)  # aiosqlite.Connection
    raw = getattr(driver, "_connection", None)  # its sqlite3.Connection
    queue = getattr(driver, "_tx", None)  # its worker thread's queue
    if raw is None or queue is None or not getattr(driver, "_running", False):
        return
    queue.put_nowait((None, raw.rollback))


def _rollback_first(close: Callable[[Any], None]) -> Callable[[Any], None]:
    def closing(dbapi_connection: Any) -> None:
        _queue_rollback(dbapi_connection)
        close(dbapi_connection)

    return closing


_LAST_USED = "baoxue_last_used"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it was last used more than ``idle_seconds`` ago.

    Instead of ``pool_pre_ping`` (a round trip on every checkout): the time a connection was made or
    last checked in is kept in its pool record; a connection idle for longer is pinged, and one that
    does not answer is replaced by a new one before the caller gets it (SQLAlchemy retries the
    checkout on :class:`DisconnectionError`).
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    def mark(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last <= idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("an idle pooled connection did not answer a ping") from exc
        record.info[_LAST_USED] = time.monotonic()

    event.listen(sync_engine, "connect", mark)
    event.listen(sync_engine, "checkin", mark)
    event.listen(sync_engine, "checkout", checkout)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    ping_idle_seconds: float = 10.0,
    autocommit: bool = False,
) -> AsyncEngine:
    """An async engine for ``url`` with Baoxue's settings for that backend.

    ``autocommit`` (PostgreSQL): every connection of the engine's own pool is in autocommit mode from
    its creation on, instead of being switched to it at each checkout and back at each check-in (two
    driver calls per use).

    PostgreSQL pools hold ``pool_size`` connections and open no overflow: under sustained load an
    overflow connection is closed at every check-in and a new one opened at the next check-out (a
    backend fork per request), which cut B4's case read from 2,800 to 1,300 requests/s at 16 concurrent
    clients and its p99 at 1,000/s from 10 ms to 120–470 ms (27 Nov, bench/notes/b4.md). A request that
    finds every connection busy waits in the pool's queue (``pool_timeout``) instead.
    """
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "checkout", _sqlite_busy_timeout_at_checkout)
        event.listen(engine.sync_engine, "savepoint", _sqlite_begin_before_savepoint)
        dialect = engine.sync_engine.dialect
        setattr(dialect, "do_terminate", _rollback_first(dialect.do_terminate))  # noqa: B010
        setattr(dialect, "do_close", _rollback_first(dialect.do_close))  # noqa: B010
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=5,
        connect_args={"connect_timeout": 5},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    ping_when_idle(engine, ping_idle_seconds)
    return engine


class DriverQuery:
    """A ``SELECT`` compiled once for PostgreSQL and run on the driver (psycopg) itself.

    For the hottest one-statement paths (:meth:`Database.fetch_one`): SQLAlchemy builds and compiles
    the statement once — binds, their types and casts, result types — and each execution then costs
    the driver's own work only (the statement is prepared on the server after a few uses), without
    SQLAlchemy's execution context, result object and the driver's per-execution column descriptions.
    Values go through the same type processors as through SQLAlchemy, both ways.
    """

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._compiled = compiled
        self._bind_processors = [
            (name, processor)
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        columns = list(statement.selected_columns)
        self.keys = tuple(str(c.key) for c in columns)
        self._result_processors = [
            (i, processor)
            for i, c in enumerate(columns)
            if (processor := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        ]

    def parameters(self, params: dict[str, Any]) -> dict[str, Any]:
        values = dict(self._compiled.construct_params(params))
        for name, processor in self._bind_processors:
            values[name] = processor(values[name])
        return values

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        if self._result_processors:
            values = list(values)
            for i, processor in self._result_processors:
                values[i] = processor(values[i])
        return dict(zip(self.keys, values, strict=True))


class Database:
    """A service's database: the engine, a session factory, and a readiness probe."""

    def __init__(self, url: str, *, pool_size: int = 10, ping_idle_seconds: float = 10.0) -> None:
        self.url = async_url(url)
        self.engine = create_engine(self.url, pool_size=pool_size, ping_idle_seconds=ping_idle_seconds)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._driver_queries: dict[int, tuple[Select[Any], DriverQuery]] = {}
        self._own_autocommit_pool = self.engine.dialect.name == "postgresql"
        if self._own_autocommit_pool:  # a pool of its own, kept in autocommit mode
            self._autocommit_engine = create_engine(
                self.url,
                pool_size=pool_size,
                ping_idle_seconds=ping_idle_seconds,
                autocommit=True,
            )
        else:
            self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine with a pool of its own (for statement listeners): the main one, and on
        PostgreSQL the autocommit one."""
        if self._own_autocommit_pool:
            return (self.engine, self._autocommit_engine)
        return (self.engine,)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement is its own transaction (PostgreSQL).

        For request work that is one statement (a read and its audit entry as one statement, see
        :meth:`baoxue.audit.AuditLog.audited_select`): no ``BEGIN`` and ``COMMIT`` round trips, and the
        statement has committed — durably, with PostgreSQL's default ``synchronous_commit`` — when
        ``execute`` returns. Anything that must commit together must therefore be *one* statement here;
        several statements belong in :meth:`transaction` or the request session. (On SQLite this is the
        driver's autocommit; Baoxue's SQLite paths use transactions.)
        """
        async with self._autocommit_engine.connect() as conn:
            yield conn

    def driver_query(self, statement: Select[Any]) -> DriverQuery:
        """``statement`` compiled for :meth:`fetch_one`, once per statement object (PostgreSQL only)."""
        known = self._driver_queries.get(id(statement))
        if known is None or known[0] is not statement:
            known = (statement, DriverQuery(statement, self.engine.dialect))
            self._driver_queries[id(statement)] = known
        return known[1]

    async def fetch_one(self, query: DriverQuery, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of ``query`` (or None), run on an autocommit connection's driver directly.

        As :meth:`autocommit`: the statement is its own transaction and has committed — durably —
        when this returns (psycopg returns after the server's ``ReadyForQuery``). A driver error is
        raised as SQLAlchemy's (``OperationalError`` …, so the problem handlers answer 503 for a lost
        database as for any statement), and a connection that is broken, or left inside a statement
        by a cancelled request, is invalidated rather than returned to the pool.
        """
        try:
            raw = await self._autocommit_engine.raw_connection()
        except psycopg.Error as exc:  # the pool does not wrap a failed connect as Connection does
            raise DBAPIError.instance(None, None, exc, psycopg.Error, hide_parameters=True) from exc
        driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        try:
            cursor = await driver.execute(query.sql, query.parameters(params), prepare=True)
            row = await cursor.fetchone()
        except BaseException as exc:
            idle = not driver.broken and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if not idle:
                await greenlet_spawn(raw.invalidate, exc if isinstance(exc, Exception) else None)
            await greenlet_spawn(raw.close)
            if isinstance(exc, psycopg.Error):
                raise DBAPIError.instance(
                    query.sql,
                    None,
                    exc,
                    psycopg.Error,
                    hide_parameters=True,
                    connection_invalidated=not idle,
                ) from exc
            raise
        await greenlet_spawn(raw.close)
        return None if row is None else query.row(row)

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._own_autocommit_pool:
            await self._autocommit_engine.dispose()


# --- SQLite: transactions that begin with BEGIN IMMEDIATE (a service opts in) --------------------------


def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


async def begin_immediate_on_sqlite(ctx: Any) -> None:
    """An ``on_startup`` hook (``ServiceSpec.on_startup``): on SQLite, every transaction of the service's
    database begins with ``BEGIN IMMEDIATE``; PostgreSQL is untouched.

    A request that reads and then writes must not start as a WAL reader: if another connection (the
    outbox relay, the audit sealer) commits in between, SQLite refuses the upgrade at once with "database
    is locked" (a stale snapshot), and the busy timeout does not help. Taking the write lock at BEGIN
    makes such transactions wait for each other instead, and lets SAVEPOINTs work as SQLAlchemy expects
    (pysqlite's own transaction handling is switched off). Installs the listeners, then drops pooled
    connections made before them."""
    db: Database = ctx.db
    if db.dialect != "sqlite":
        return
    engine = db.engine.sync_engine
    if not event.contains(engine, "begin", _begin_immediate):
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_immediate)
    await db.engine.dispose()
