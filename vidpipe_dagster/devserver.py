"""``vidpipe dev``: the API and Dagster (webserver + daemon) together on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from vidpipe_dagster.dagster_home import ensure_dagster_home
from vidpipe_dagster.foreground import Relay, on_stop_signal, stop_groups
from vidpipe_dagster.settings import Settings

GRPC_MESSAGE_BYTES = 400 * 1024 * 1024
STOP_GRACE_SECONDS = 2.5
"""How long the services get to stop on SIGTERM (a running node records its interruption)
before whatever is left is killed, so Ctrl-C returns within 5 s."""
STOPPED = "Stopped the vidpipe API and Dagster (webserver, daemon, code servers and runs)."

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


def run_dev(
    *,
    settings: Settings,
    api_port: int = 8000,
    dagster_port: int = 3000,
    host: str = "127.0.0.1",
    echo: Callable[[str], None] = print,
) -> int:
    """Start both services, print their URLs, and stop both on Ctrl-C or if one exits."""
    from vidpipe_dagster.db.migrate import upgrade

    upgrade(settings.resolved_database_url)
    home = ensure_dagster_home(settings)
    workspace = write_workspace(settings, home)
    dagster_url = f"http://{host}:{dagster_port}"
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
    commands = {
        "dagster": [
            sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
            "-h", host, "-p", str(dagster_port),
        ],
        "api": [
            sys.executable, "-m", "uvicorn", "api.main:app",
            "--host", host, "--port", str(api_port),
            "--timeout-graceful-shutdown", "3",
        ],
    }  # fmt: skip
    relay = Relay(echo)
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
    echo(f"vidpipe API   http://{host}:{api_port}  (docs: http://{host}:{api_port}/docs)")
    echo(f"Dagster UI    {dagster_url}")
    echo(f"VIDPIPE_HOME  {settings.resolved_home}   DAGSTER_HOME {home}")
    echo("Press Ctrl-C to stop both.")
    stopping = threading.Event()
    code = 0

    def stop(_signum: int) -> None:
        relay.mute()
        stopping.set()

    with on_stop_signal(stop):
        try:
            while not stopping.is_set():
                for name, process in zip(commands, processes, strict=True):
                    if process.poll() is not None and not stopping.is_set():
                        relay.mute()
                        echo(f"{name} exited with code {process.returncode}; stopping.")
                        code = process.returncode or 1
                        stopping.set()
                stopping.wait(0.5)
        finally:
            relay.mute()
            stop_groups(processes, grace=STOP_GRACE_SECONDS)
            relay.join()
    echo(STOPPED)
    return code
