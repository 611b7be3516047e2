"""baoxue.entropy: the operating system's random bytes drawn a block at a time, each byte handed out once,
per thread, and never the same after a fork as in the parent."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import uuid

import pytest

from baoxue import entropy
from baoxue.pii.crypto import FieldCipher


def test_the_bytes_are_the_systems_in_order_each_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count()
    drawn: list[bytes] = []

    def urandom(n: int) -> bytes:
        block = bytes(next(counter) % 256 for _ in range(n))
        drawn.append(block)
        return block

    monkeypatch.setattr(entropy.os, "urandom", urandom)
    monkeypatch.setattr(entropy, "BLOCK_BYTES", 64)
    entropy._block.data = b""  # this thread's block from earlier tests
    handed = [entropy.random_bytes(12) for _ in range(20)]  # 5 per block of 64, 4 bytes left unused
    assert [len(h) for h in handed] == [12] * 20
    assert len(drawn) == 4
    assert b"".join(handed) == b"".join(block[:60] for block in drawn)
    assert entropy.random_bytes(100) == drawn[-1]  # larger than a block: drawn on its own
    entropy._block.data = b""


def test_nonces_and_uuids_are_distinct_and_well_formed() -> None:
    nonces = [entropy.random_bytes(12) for _ in range(50_000)]
    assert len(set(nonces)) == len(nonces)
    texts = [entropy.uuid4_text() for _ in range(10_000)]
    ids = [uuid.UUID(t) for t in texts]
    assert [str(u) for u in ids] == texts  # canonical: lower-case, hyphenated
    assert len(set(ids)) == len(ids)
    assert {u.version for u in ids} == {4}
    assert {u.variant for u in ids} == {uuid.RFC_4122}


def test_threads_draw_from_blocks_of_their_own() -> None:
    results: dict[int, list[bytes]] = {}

    def draw(i: int) -> None:
        results[i] = [entropy.random_bytes(16) for _ in range(5_000)]

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [b for values in results.values() for b in values]
    assert len(every) == 20_000
    assert len(set(every)) == len(every)


def _child_draws(conn) -> None:  # type: ignore[no-untyped-def]
    conn.send([entropy.random_bytes(12) for _ in range(5)])
    conn.close()


def test_a_forked_child_never_hands_out_what_the_parent_will() -> None:
    entropy.random_bytes(12)  # the parent's block is drawn and partly used: the child inherits it
    parent_end, child_end = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=_child_draws, args=(child_end,))
    child.start()
    from_child = parent_end.recv()
    child.join(timeout=10)
    from_parent = [entropy.random_bytes(12) for _ in range(5)]
    assert child.exitcode == 0
    assert not set(from_child) & set(from_parent)


def test_the_field_cipher_takes_a_fresh_nonce_for_every_token() -> None:
    cipher = FieldCipher({"k1": bytes(range(16))}, "k1")
    tokens = [cipher.encrypt("370406201505050012") for _ in range(2_000)]
    assert len(set(tokens)) == len(tokens)
    assert {cipher.decrypt(t) for t in tokens} == {"370406201505050012"}
