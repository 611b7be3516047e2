"""The cyclic garbage collector around bulk work in memory."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a stretch of synchronous bulk work, then restore it.

    Work that allocates millions of long-lived, acyclic containers (the linkage's blocks: lists of
    positions by birth date and by name) sets off a full collection every time the objects allocated
    since the last one reach a quarter of those that survived it, and each walks every container alive:
    at a million known children, 2 of the linkage's 13 seconds (29 Nov, ``bench/b2_linkage.py``).
    Reference counting still frees everything that is not in a cycle; cycles made meanwhile wait for the
    next collection after the block. Only for code that does not await (nothing else of the process
    runs on its thread meanwhile) and whose garbage is not cyclic. Nested use is fine: the collector is
    enabled again only if it was enabled before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
