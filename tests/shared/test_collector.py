"""``collector_paused``: the cyclic collector off inside, restored after (as it was, also on errors)."""

from __future__ import annotations

import gc

import pytest

from baoxue.collector import collector_paused


@pytest.fixture
def collector_state():
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_paused_inside_and_enabled_again_after_even_on_an_error(collector_state):
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), collector_paused():
        assert not gc.isenabled()
        1 / 0
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_nesting_restores_the_outer_state(collector_state):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not enable it inside the outer one
    assert gc.isenabled()


def test_as_a_decorator_each_call_pauses_and_restores(collector_state):
    gc.enable()

    @collector_paused()
    def inside() -> bool:
        return gc.isenabled()

    assert inside() is False and inside() is False
    assert gc.isenabled()
