"""Child processes that die with their parent and within a time limit.

A child runs in a process group of its own and dies with the thread that started it
(``PR_SET_PDEATHSIG`` on Linux: a killed run worker leaves nothing rendering behind). At its
time limit, or when the caller is interrupted, the whole group is killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache

KILL_WAIT_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


class ProcessTimedOut(Exception):
    """A child outlived its time limit and its group was killed; ``stderr`` is what it printed."""

    def __init__(self, stderr: str) -> None:
        super().__init__("the process outlived its time limit")
        self.stderr = stderr


@lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent: int, prctl: Callable[..., int] | None) -> Callable[[], None] | None:
    """What the child runs before exec: die with ``parent`` (the thread that started it)."""
    if prctl is None:
        return None

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return setup


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=KILL_WAIT_SECONDS)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass


def run_in_group(command: Sequence[str], *, timeout: float) -> tuple[int, str]:
    """Run ``command`` (no stdin) in its own process group; return (exit code, stderr).

    The process dies with this one. When it outlives ``timeout`` seconds its whole group is
    killed and :class:`ProcessTimedOut` raised; when this thread is interrupted (Ctrl-C, a
    cancelled run) the group is killed and the interruption goes on.
    """
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        process_group=0,
        preexec_fn=_child_setup(os.getpid(), _prctl()),  # noqa: PLW1509
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr_so_far = exc.stderr or ""
        partial = (
            stderr_so_far.decode(errors="replace")
            if isinstance(stderr_so_far, bytes)
            else stderr_so_far
        )
        _kill_group(process)
        raise ProcessTimedOut(partial) from None
    except BaseException:
        _kill_group(process)
        raise
    return process.returncode, stderr or ""
