"""Another writer holding a SQLite database's write lock, for tests of what waits for it and what gives up.

SQLite has one write lock per database. :func:`hold_write_lock` takes it with a connection of its own on
a thread, holds it for ``seconds`` and lets go; :attr:`WriteLockHolder.taken` is set once it is held.
From async code, wait for it off the event loop (``await asyncio.to_thread(holder.taken.wait, 10)``):
the lock may first have to wait for a write that the loop itself is still making.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path


class WriteLockHolder(threading.Thread):
    """A thread holding the write lock of the database at ``path`` for ``seconds``.

    ``exclusive`` takes it with ``BEGIN EXCLUSIVE`` (readers outside WAL mode are shut out too), else
    ``BEGIN IMMEDIATE``. ``while_held`` runs on the holding connection as soon as the lock is taken
    (to note the state another writer was interrupted in). The transaction is rolled back at the end:
    the holder writes nothing.
    """

    def __init__(
        self,
        path: str | Path,
        seconds: float,
        *,
        exclusive: bool = False,
        while_held: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        super().__init__(name="sqlite-write-lock", daemon=True)
        self.path, self.seconds, self.exclusive, self.while_held = str(path), seconds, exclusive, while_held
        self.taken = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN EXCLUSIVE" if self.exclusive else "BEGIN IMMEDIATE")
            if self.while_held is not None:
                self.while_held(conn)
            self.taken.set()
            threading.Event().wait(self.seconds)
            conn.execute("ROLLBACK")
        except BaseException as exc:  # seen by the test through join_checked(), not lost on the thread
            self.error = exc
            self.taken.set()
        finally:
            conn.close()

    def join_checked(self, timeout: float | None = None) -> None:
        """``join``, then raise what went wrong on the thread (the lock never taken, say)."""
        self.join(timeout)
        if self.error is not None:
            raise self.error


def hold_write_lock(
    path: str | Path,
    seconds: float,
    *,
    exclusive: bool = False,
    while_held: Callable[[sqlite3.Connection], None] | None = None,
) -> WriteLockHolder:
    """Start a :class:`WriteLockHolder`; wait on its ``taken`` event before relying on the lock."""
    holder = WriteLockHolder(path, seconds, exclusive=exclusive, while_held=while_held)
    holder.start()
    return holder
