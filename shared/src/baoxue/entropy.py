"""Random bytes from the operating system's CSPRNG, drawn a block at a time: for nonces and identifiers.

``os.urandom`` is a system call, and CPython releases the GIL around it. A feed's validation runs in a
worker thread beside the event loop and drew three or more small values per row (the ID number's and the
phone's GCM nonces, the row's candidate id): at each draw the thread gave the GIL away and waited to get
it back while the event loop ran: 30 % of that thread's samples stood in those draws (py-spy, the B1
benchmark at 20,000 rows on PostgreSQL). Drawn a block at a time (29 Nov, paired with the code before,
PostgreSQL): at 20,000 rows the staging step 3.5–3.9 s -> 2.8–2.9 s; at 100,000 rows 17.8–18.5 s ->
11.6–12.2 s, the whole ingest 49.4–50.9 s -> 41.9–42.8 s and its CPU 30.2–31.7 s -> 21.6–22.7 s.

Every byte handed out comes from ``os.urandom`` and is handed out once. Each thread draws its own
blocks; a forked child starts with none (the block it inherited is also the parent's). Keys are not
drawn from here: they come from ``secrets`` directly and never sit in a buffer.
"""

from __future__ import annotations

import os
import threading

BLOCK_BYTES = 4096
"""Bytes drawn from the operating system at a time (one system call per ≈ 340 GCM nonces)."""


class _Forks:
    """Counts forks in a forked child: a thread's block drawn before the fork is not used after it."""

    count = 0


def _forked() -> None:
    _Forks.count += 1


os.register_at_fork(after_in_child=_forked)


class _Block(threading.local):
    data: bytes = b""
    position: int = 0
    generation: int = -1


_block = _Block()


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG (as ``os.urandom(n)``), never handed out twice."""
    block = _block
    position = block.position
    if position + n > len(block.data) or block.generation != _Forks.count:
        if n > BLOCK_BYTES:
            return os.urandom(n)
        block.data, block.generation, position = os.urandom(BLOCK_BYTES), _Forks.count, 0
    block.position = position + n
    return block.data[position : position + n]


def uuid4_text() -> str:
    """A random (version 4) UUID's canonical text, as ``str(uuid.uuid4())``.

    Written out directly: building a ``uuid.UUID`` and formatting it cost ≈ 2.4 µs against ≈ 1 µs, and
    bulk paths draw one per row or event (a feed's candidate ids; the outbox's event ids, a million at
    a time for a large feed)."""
    raw = bytearray(random_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
