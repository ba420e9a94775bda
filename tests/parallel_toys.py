"""Per-item functions for the parallel tests (a module, so spawned workers can import them)."""

from __future__ import annotations

import os
from pathlib import Path


def square(x: int) -> int:
    return x * x


def square_or_exit(item: tuple[int, str]) -> int:
    """x*x for ``(x, "")``; the worker process exits on ``(x, "always")`` and on ``(x, FILE)``
    when it is the first to remove FILE (one death in the whole run)."""
    x, crash = item
    if crash == "always":
        os._exit(9)
    if crash:
        try:
            Path(crash).unlink()
        except FileNotFoundError:
            pass
        else:
            os._exit(9)
    return x * x


def pid_setup() -> int:
    return os.getpid()


def with_state(state: int, x: int) -> tuple[int, int]:
    return state, x + 1


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def setup_fails() -> None:
    raise FileNotFoundError("/nowhere/sam.pth: not on this node")


CRASH_ONCE = "SEGLIB_TEST_CRASH_ONCE"  # a file: the first worker that removes it exits


def propose_or_exit(image):
    """The opencv proposer, but the worker exits (as if killed) when it is the first to
    remove the file named by $SEGLIB_TEST_CRASH_ONCE."""
    from seglib.backends.opencv import propose

    marker = os.environ.get(CRASH_ONCE)
    if marker:
        try:
            Path(marker).unlink()
        except FileNotFoundError:
            pass
        else:
            os._exit(9)
    return propose(image)
