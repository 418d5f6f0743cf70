"""Hosts for the production-shaped test: network namespaces joined by a bridge.

Each :class:`Host` is a network namespace with its own address on a bridge in the root
namespace, and its own private ``/tmp``-like directory (a tmpfs mounted inside the host's mount
namespace), so a file one host writes is invisible to the others, as on separate machines.
Services of the test itself (PostgreSQL's relay, S3, the fake providers and the fake Lambda
API) listen on the bridge address of the root namespace, which every host reaches.

Everything is named after this process's id and removed on :meth:`Network.close`; creating a
network needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): :func:`available` says whether it works.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _free_subnet() -> int:
    """A ``10.N.0.0/24`` no interface here uses (other test runs may hold bridges too)."""
    used = _ip("-o", "-4", "addr", "show").stdout
    for candidate in range(200, 255):
        if f" 10.{candidate}.0." not in used:
            return candidate
    raise RuntimeError("no free 10.x.0.0/24 subnet for the test network")


def available() -> str | None:
    """None when namespaces can be made here, else the reason they cannot."""
    name = f"vpprobe{os.getpid()}"
    try:
        result = _ip("netns", "add", name, check=False)
    except FileNotFoundError:
        return "the ip command is missing"
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


@dataclass
class Process:
    """A process started on a host, in its own process group, its output in ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` of its output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM its process group, then SIGKILL what is left after ``timeout``."""
        if self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


@dataclass
class Host:
    """One machine: a network namespace and a mount namespace with private directories.

    An anchor process holds the mount namespace, where ``home`` (a path of this host alone)
    and ``machine`` (the same path on every host, like ``/var/lib/vidpipe`` on separate
    machines) are tmpfs mounts; every command run on the host enters both namespaces of the
    anchor, so the host's processes share its files and nothing else does.
    """

    name: str
    namespace: str
    address: str
    home: Path
    logs: Path
    machine: Path
    anchor: subprocess.Popen[bytes] | None = None
    processes: list[Process] = field(default_factory=list)

    def boot(self) -> None:
        """Start the anchor and wait until ``home`` is mounted."""
        home, machine = shlex.quote(str(self.home)), shlex.quote(str(self.machine))
        mounts = " && ".join(
            f"mkdir -p {path} && mount -t tmpfs -o size=2g tmpfs {path}" for path in (home, machine)
        )
        self.anchor = subprocess.Popen(
            [
                "ip", "netns", "exec", self.namespace,
                "unshare", "--mount", "--propagation", "private",
                "sh", "-c", f"{mounts} && touch {home}/.mounted && exec sleep infinity",
            ],
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while self.run(["test", "-e", str(self.home / ".mounted")], env={}).returncode != 0:
            if time.monotonic() > deadline or self.anchor.poll() is not None:
                raise RuntimeError(f"host {self.name} did not boot")
            time.sleep(0.05)

    def _wrap(self, argv: Sequence[str]) -> list[str]:
        assert self.anchor is not None, "boot() the host first"
        # the anchor is `ip netns exec`, whose child `unshare` execs sh then sleep: the
        # namespaces are those of the anchor's descendants, found through /proc.
        pid = _leaf(self.anchor.pid)
        return ["nsenter", "-t", str(pid), "-m", "-n", f"--wd={self.home}", "--", *argv]

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float = 300, input=None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion on this host and return its result."""
        return subprocess.run(
            self._wrap(argv),
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )

    def write(self, path: Path, text: str) -> None:
        """Write ``text`` to ``path`` in this host's file system."""
        result = self.run(["sh", "-c", f"cat > {shlex.quote(str(path))}"], env={}, input=text)
        assert result.returncode == 0, result.stderr

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str]) -> Process:
        """Start ``argv`` on this host in the background, in a process group of its own."""
        log = self.logs / f"{self.name}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                self._wrap(argv),
                env={"PATH": os.environ["PATH"], **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = Process(name=f"{self.name}/{name}", popen=popen, log=log)
        self.processes.append(process)
        return process

    def shutdown(self) -> None:
        """Stop the host's processes, then its anchor (which unmounts ``home``)."""
        for process in reversed(self.processes):
            process.stop()
        if self.anchor is not None and self.anchor.poll() is None:
            os.killpg(self.anchor.pid, signal.SIGKILL)
            self.anchor.wait(timeout=5)


def _leaf(pid: int) -> int:
    """The deepest single descendant of ``pid`` (the anchor's sleeping process)."""
    while True:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return pid
        if len(children) != 1:
            return pid
        pid = int(children[0])


class Network:
    """A bridge in the root namespace and one namespace per host attached to it."""

    def __init__(self, *, root: Path, subnet: int | None = None) -> None:
        tag = os.getpid() % 100000
        subnet = subnet if subnet is not None else _free_subnet()
        self.bridge = f"vpbr{tag}"
        self.gateway = f"10.{subnet}.0.1"
        self._subnet = subnet
        self._tag = tag
        self.root = root
        self.hosts: dict[str, Host] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        """A new namespace named after ``name`` with the next address on the bridge."""
        index = len(self.hosts) + 2
        namespace = f"vp{self._tag}{name}"
        veth = f"vp{self._tag}h{index}"
        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
        _ip("link", "set", f"{veth}p", "netns", namespace)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        address = f"10.{self._subnet}.0.{index}"
        inside = ("netns", "exec", namespace, "ip")
        _ip(*inside, "addr", "add", f"{address}/24", "dev", f"{veth}p")
        _ip(*inside, "link", "set", f"{veth}p", "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", "default", "via", self.gateway)
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        host = Host(
            name=name,
            namespace=namespace,
            address=address,
            home=self.root / "hosts" / name,
            logs=logs,
            machine=self.root / "machine",
        )
        self.hosts[name] = host
        host.boot()
        return host

    def close(self) -> None:
        """Stop every process and remove the namespaces and the bridge."""
        for host in self.hosts.values():
            host.shutdown()
        deadline = time.monotonic() + 5
        for host in self.hosts.values():
            _ip("netns", "del", host.namespace, check=False)
        while time.monotonic() < deadline:
            if _ip("link", "show", self.bridge, check=False).returncode != 0:
                break
            _ip("link", "del", self.bridge, check=False)
