"""``vidpipe dev``: the API and Dagster (webserver + daemon) together on the embedded defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vidpipe_dagster.dagster_home import ensure_dagster_home
from vidpipe_dagster.settings import Settings

GRPC_MESSAGE_BYTES = 400 * 1024 * 1024

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


def _stop(processes: list[subprocess.Popen], timeout: float = 20.0) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


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
        ],
    }  # fmt: skip
    processes = [
        subprocess.Popen(command, env=env, start_new_session=True) for command in commands.values()
    ]
    echo(f"vidpipe API   http://{host}:{api_port}  (docs: http://{host}:{api_port}/docs)")
    echo(f"Dagster UI    {dagster_url}")
    echo(f"VIDPIPE_HOME  {settings.resolved_home}   DAGSTER_HOME {home}")
    echo("Press Ctrl-C to stop both.")
    stopping = False

    def _interrupt(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stopping:
            for name, process in zip(commands, processes, strict=True):
                if process.poll() is not None:
                    echo(f"{name} exited with code {process.returncode}; stopping.")
                    code = process.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        echo("Stopping the API and Dagster...")
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("Stopped.")
    return code
