"""Child processes run from a terminal command: output relayed, Ctrl-C turned into one line.

``vidpipe demo`` and ``vidpipe dev`` start their work as child processes, each in a process
group of its own, so a Ctrl-C at the terminal reaches only the command itself. The command
relays the children's output while they work (:class:`Relay`), mutes it once it starts
stopping them (what they print while dying is noise: interrupted tracebacks, shutdown logs),
stops them within a few seconds (:func:`stop_groups`) and prints one line of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Relay:
    """Copies lines from child output streams to ``echo`` until :meth:`mute` is called.

    Muted streams are still drained, so a child never blocks on a full pipe. With ``keep``,
    only the lines it accepts are relayed.
    """

    def __init__(
        self, echo: Callable[[str], None], *, keep: Callable[[str], bool] | None = None
    ) -> None:
        self.echo = echo
        self.keep = keep
        self.muted = threading.Event()
        self._threads: list[threading.Thread] = []

    def follow(self, stream: IO[str] | None, *, echo: Callable[[str], None] | None = None) -> None:
        """Relay ``stream`` (to ``echo``, else the relay's own) from a thread of its own.

        ``stream`` is a pipe of a child process started with ``subprocess.PIPE``.
        """
        if stream is None:
            raise ValueError("Relay.follow needs a piped stream (subprocess.PIPE)")
        target = echo or self.echo

        def copy() -> None:
            with contextlib.suppress(OSError, ValueError):
                for line in stream:
                    text = line.rstrip("\n")
                    if not self.muted.is_set() and (self.keep is None or self.keep(text)):
                        target(text)

        thread = threading.Thread(target=copy, name="vidpipe-relay", daemon=True)
        thread.start()
        self._threads.append(thread)

    def mute(self) -> None:
        """Stop relaying (the streams keep being drained)."""
        self.muted.set()

    def join(self, timeout: float = 1.0) -> None:
        """Wait (bounded) for the streams to reach their end."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


@contextlib.contextmanager
def on_stop_signal(handler: Callable[[int], None]) -> Iterator[None]:
    """Call ``handler(signum)`` on SIGINT and SIGTERM inside the block, instead of raising."""
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: handler(signum)) for sig in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` (a child started with ``start_new_session`` and what it
    started without leaving the session)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(processes: list[subprocess.Popen], *, grace: float) -> None:
    """SIGTERM each child's process group, SIGKILL what is left after ``grace`` seconds.

    Each child must lead its group (``start_new_session=True`` or ``process_group=0``).
    Processes that stayed in a child's session (code servers, run workers) are killed too.
    """
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
    for process in processes:
        _signal_group(process.pid, signal.SIGKILL)
        for pid in session_members(process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(1.0)
