"""SIGTERM during ``write``: the first one stops the sync, in the main thread, at a point where stopping is safe.

Python runs a signal handler in the main thread, between two bytecodes of whatever it is doing. Raising there is what
wakes a main thread that waits in ``select`` or ``os.read``, but it can also cut short work that must be finished once
started: completions taken off the sender's queue and not yet acknowledged, a call handed to the pool and not yet
counted, a STATE line half written to stdout. Such work runs in a :func:`deferred` block, where the signal only
marks itself pending and the interruption is raised once the block is left.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

_MAIN_THREAD = threading.main_thread().ident
_depth = 0  # deferred blocks the main thread is in; only the main thread changes it
_pending = False  # a SIGTERM arrived in a deferred block, or one left by an exception, and is not raised yet


class Interrupted(BaseException):
    """SIGTERM arrived during ``write``.

    Raised in the main thread at the first safe point, so the writer's failure path runs: stop reading, cut retries
    short, let the requests in flight finish (each within the client's timeouts), emit the states they cover. A
    BaseException, so that no ``except Exception`` on the way mistakes it for an AWS or input error.
    """


@contextmanager
def interrupting() -> Iterator[None]:
    """Within the block, the first SIGTERM raises :class:`Interrupted` in the main thread: at once outside
    :func:`deferred` blocks, else as the outermost one is left. Later SIGTERMs are ignored, so that they cannot cut
    short the orderly stop the first one started. On leaving, the previous handler is back.

    An interruption still pending when the block ends (see :func:`deferred`) is raised then if the block ends
    normally; if it ends with an exception, that exception goes on alone. To be entered from the main thread, outside
    any deferred block.
    """
    global _pending
    _pending = False
    previous = signal.getsignal(signal.SIGTERM)  # read first: installing runs pending handlers, so it may raise
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        yield
        if _pending:
            raise Interrupted()
    finally:
        signal.signal(signal.SIGTERM, previous)
        _pending = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _depth:
        _pending = True
    else:
        raise Interrupted()


class _Deferred:
    """The context manager :func:`deferred` returns (one for all, as it holds no state of its own)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth
        if threading.get_ident() == _MAIN_THREAD:
            _depth += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        global _depth, _pending
        if threading.get_ident() != _MAIN_THREAD:
            return
        # The handler runs only at a call or a backward jump (Python 3.10 on), and there is none between the
        # decrement and the test of _pending: a SIGTERM handled before the decrement is seen pending here, one
        # handled after it raises at once, as outside any block.
        _depth -= 1
        if not _depth and _pending and exc_type is None:
            _pending = False
            raise Interrupted()


_DEFERRED = _Deferred()


def deferred() -> _Deferred:
    """A block that a SIGTERM does not interrupt: in it, the signal only marks itself pending (the handler
    :func:`interrupting` installs does that), and :class:`Interrupted` is raised once the outermost deferred block is
    left normally. When the block is left by an exception, that exception propagates and the interruption stays
    pending, to be raised when a later outermost deferred block is left normally, or at the end of
    :func:`interrupting`.

    Blocks nest. A SIGTERM handled just before the block is entered raises before any of it runs. From any thread but
    the main one this does nothing: signal handlers run only in the main thread, and only it counts its blocks.
    Costs a few hundred nanoseconds: for a batch or a write, not for a record.
    """
    return _DEFERRED
