"""sigterm: the first SIGTERM raises Interrupted in the main thread, at once outside deferred blocks and as the
outermost one is left inside them; later ones are ignored; the previous handler is back afterwards."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from destination_kinesis.sigterm import Interrupted, deferred, interrupting


@pytest.fixture(autouse=True)
def fallback_handler() -> Iterator[list[int]]:
    """A SIGTERM that no handler of the module catches is recorded instead of ending pytest."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm() -> None:
    """Deliver SIGTERM to this (the main) thread; its Python handler runs before this returns."""
    signal.raise_signal(signal.SIGTERM)


def test_outside_a_deferred_block_sigterm_raises_at_once(fallback_handler: list[int]) -> None:
    steps = []
    with pytest.raises(Interrupted), interrupting():
        sigterm()
        steps.append("after the signal")
    assert steps == [] and fallback_handler == []


def test_in_a_deferred_block_sigterm_is_raised_once_the_block_is_left() -> None:
    steps = []
    with pytest.raises(Interrupted), interrupting():
        with deferred():
            sigterm()
            steps.append("rest of the block")
        steps.append("after the block")
    assert steps == ["rest of the block"]


def test_nested_blocks_raise_only_as_the_outermost_is_left() -> None:
    steps = []
    with pytest.raises(Interrupted), interrupting():
        with deferred():
            with deferred():
                sigterm()
            steps.append("after the inner block")
        steps.append("after the outer block")
    assert steps == ["after the inner block"]


def test_later_sigterms_are_ignored(fallback_handler: list[int]) -> None:
    """Two in a block make one Interrupted; one more during the stop that follows changes nothing."""
    steps = []
    with pytest.raises(Interrupted), interrupting():
        try:
            with deferred():
                sigterm()
                sigterm()
        except Interrupted:
            sigterm()
            steps.append("stopping")
            raise
    assert steps == ["stopping"] and fallback_handler == []


def test_the_previous_handler_is_back_after_the_block(fallback_handler: list[int]) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with interrupting():
        assert signal.getsignal(signal.SIGTERM) is not previous
    assert signal.getsignal(signal.SIGTERM) is previous
    with pytest.raises(Interrupted), interrupting():
        sigterm()
    assert signal.getsignal(signal.SIGTERM) is previous
    sigterm()
    assert fallback_handler == [signal.SIGTERM]


def test_an_exception_leaving_a_block_goes_on_and_the_interruption_waits_for_the_next_block() -> None:
    steps = []
    with pytest.raises(Interrupted), interrupting():
        with pytest.raises(ValueError), deferred():
            sigterm()
            raise ValueError("already failing")
        steps.append("handled the ValueError")
        with deferred():
            steps.append("next block")
        steps.append("after the next block")
    assert steps == ["handled the ValueError", "next block"]


def test_an_interruption_still_pending_at_the_end_is_raised_unless_the_end_is_an_exception() -> None:
    with pytest.raises(Interrupted), interrupting():
        with pytest.raises(ValueError), deferred():
            sigterm()
            raise ValueError("already failing")
    with pytest.raises(KeyError), interrupting():
        with pytest.raises(ValueError), deferred():
            sigterm()
            raise ValueError("already failing")
        raise KeyError("failing for another reason")
    with interrupting():  # and nothing is left pending for the next time
        pass


def test_deferred_in_another_thread_does_not_defer_the_main_thread() -> None:
    """Only the main thread's blocks count: a worker inside deferred() leaves the main thread interruptible."""
    entered, release = threading.Event(), threading.Event()

    def worker() -> None:
        with deferred():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    with pytest.raises(Interrupted), interrupting():
        thread.start()
        try:
            assert entered.wait(10)
            sigterm()
        finally:
            release.set()
            thread.join(10)
