"""``vidpipe dev``: the API and Dagster (webserver + daemon) together on the embedded defaults.

Quiet by default: the services log at WARNING, Dagster's superseded-command warning for
``dagster dev`` is not shown, and the INFO/DEBUG records of run workers are not relayed, so
an idle ``vidpipe dev`` prints nothing after its URLs. ``verbose`` relays everything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from vidpipe_dagster.runtime.dagster_home import ensure_dagster_home
from vidpipe_dagster.runtime.foreground import Relay, on_stop_signal, stop_groups
from vidpipe_dagster.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEFAULT_DAGSTER_PORT = 3000
DEFAULT_API_URL = f"http://{DEFAULT_HOST}:{DEFAULT_API_PORT}"
GRPC_MESSAGE_BYTES = 400 * 1024 * 1024
STOP_GRACE_SECONDS = 2.5
"""How long the services get to stop on SIGTERM (a running node records its interruption)
before whatever is left is killed, so Ctrl-C returns within 5 s."""
STOPPED = "Stopped the vidpipe API and Dagster (webserver, daemon, code servers and runs)."

DAGSTER_DEV_QUIETLY = (
    "import runpy, warnings, dagster; "
    "warnings.filterwarnings('ignore', category=dagster.SupersessionWarning); "
    "runpy.run_module('dagster', run_name='__main__')"
)
"""``python -m dagster`` without the warning that ``dagster dev`` is superseded by ``dg dev``
(the ``dg`` command is not part of vidpipe's install)."""
CHATTY_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - \S+ - (?:DEBUG|INFO) - ")
"""A Dagster log record below WARNING, as run workers print their events."""

WORKSPACE_TEMPLATE = """\
load_from:
  - python_module:
      module_name: vidpipe_dagster.definitions
      attribute: defs
      location_name: {location}
"""


def write_workspace(settings: Settings, home: Path) -> Path:
    """A workspace.yaml for the installed package, named after ``settings.dagster_location``."""
    path = home / "workspace.yaml"
    path.write_text(WORKSPACE_TEMPLATE.format(location=settings.dagster_location))
    return path


def quiet_line(line: str) -> bool:
    """Whether a quiet ``vidpipe dev`` relays ``line`` (not a Dagster INFO/DEBUG record)."""
    return CHATTY_RECORD.match(line) is None


def service_commands(
    *, workspace: Path, host: str, api_port: int, dagster_port: int, verbose: bool
) -> dict[str, list[str]]:
    """The command lines of Dagster (``dagster dev``) and the API (uvicorn)."""
    level = "info" if verbose else "warning"
    dagster = ["-m", "dagster"] if verbose else ["-c", DAGSTER_DEV_QUIETLY]
    return {
        "dagster": [
            sys.executable, *dagster, "dev", "-w", str(workspace),
            "-h", host, "-p", str(dagster_port), "--log-level", level,
        ],
        "api": [
            sys.executable, "-m", "uvicorn", "api.main:app",
            "--host", host, "--port", str(api_port), "--log-level", level,
            "--timeout-graceful-shutdown", "3",
        ],
    }  # fmt: skip


def service_env(*, settings: Settings, home: Path, dagster_url: str) -> dict[str, str]:
    """The environment both services start with: this one plus vidpipe's and Dagster's homes."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "VIDPIPE_HOME": str(settings.resolved_home),
        "VIDPIPE_DAGSTER_URL": dagster_url,
    }
    # The admin editor runs on another localhost port and calls the API from the browser.
    env.setdefault("VIDPIPE_CORS_ALLOW_LOCALHOST", "true")
    for name in ("DAGSTER_GRPC_MAX_RX_BYTES", "DAGSTER_GRPC_MAX_SEND_BYTES"):
        # A location of about 1,000 pipelines snapshots past gRPC's 100 MB default.
        env.setdefault(name, str(GRPC_MESSAGE_BYTES))
    return env


def start_services(
    commands: dict[str, list[str]], *, env: dict[str, str], relay: Relay
) -> list[subprocess.Popen[str]]:
    """Start each command in its own process group, relaying its output through ``relay``."""
    processes = []
    for command in commands.values():
        process = subprocess.Popen(
            command,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        processes.append(process)
        relay.follow(process.stdout)
    return processes


def supervise(
    services: dict[str, subprocess.Popen[str]],
    *,
    relay: Relay,
    echo: Callable[[str], None],
) -> int:
    """Wait until Ctrl-C or until a service exits, then stop them all; the exit code.

    0 after Ctrl-C; the exited service's code (or 1) if one stopped by itself.
    """
    stopping = threading.Event()
    code = 0

    def stop(_signum: int) -> None:
        relay.mute()
        stopping.set()

    with on_stop_signal(stop):
        try:
            while not stopping.is_set():
                for name, process in services.items():
                    if process.poll() is not None and not stopping.is_set():
                        relay.mute()
                        echo(f"{name} exited with code {process.returncode}; stopping.")
                        code = process.returncode or 1
                        stopping.set()
                stopping.wait(0.5)
        finally:
            relay.mute()
            stop_groups(list(services.values()), grace=STOP_GRACE_SECONDS)
            relay.join()
    return code


def run_dev(
    *,
    settings: Settings,
    api_port: int = DEFAULT_API_PORT,
    dagster_port: int = DEFAULT_DAGSTER_PORT,
    host: str = DEFAULT_HOST,
    verbose: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Start both services, print their URLs, and stop both on Ctrl-C or if one exits.

    Quiet unless ``verbose`` (see the module's docstring).
    """
    from vidpipe_dagster.db.migrate import upgrade

    upgrade(settings.resolved_database_url)
    home = ensure_dagster_home(settings)
    workspace = write_workspace(settings, home)
    dagster_url = f"http://{host}:{dagster_port}"
    env = service_env(settings=settings, home=home, dagster_url=dagster_url)
    # Media links in Dagster's materializations point at the API this command serves.
    env.setdefault("VIDPIPE_PUBLIC_API_URL", f"http://{host}:{api_port}")
    commands = service_commands(
        workspace=workspace,
        host=host,
        api_port=api_port,
        dagster_port=dagster_port,
        verbose=verbose,
    )
    relay = Relay(echo, keep=None if verbose else quiet_line)
    processes = start_services(commands, env=env, relay=relay)
    echo(f"vidpipe API   http://{host}:{api_port}  (docs: http://{host}:{api_port}/docs)")
    echo(f"Dagster UI    {dagster_url}")
    echo(f"VIDPIPE_HOME  {settings.resolved_home}   DAGSTER_HOME {home}")
    quiet = "" if verbose else " (quiet: `vidpipe dev --verbose` shows the services' logs)"
    echo(f"Press Ctrl-C to stop both.{quiet}")
    code = supervise(dict(zip(commands, processes, strict=True)), relay=relay, echo=echo)
    echo(STOPPED)
    return code
