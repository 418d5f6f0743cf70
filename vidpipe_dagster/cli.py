"""The ``vidpipe`` command line.

A configuration problem ends any command with one or two lines that name the setting and the
fix, and exit code 2 (``vidpipe --debug ...`` shows the traceback instead).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

CONFIG_ERROR_EXIT = 2


class _Cli(click.Group):
    """The top-level group: turns configuration problems into a short message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            message = _explain(error)
            if message is None:
                raise
            click.echo(f"Error: {message}", err=True)
            ctx.exit(CONFIG_ERROR_EXIT)


def _explain(error: BaseException) -> str | None:
    from vidpipe_dagster.runtime.config_errors import explain
    from vidpipe_dagster.settings import Settings

    try:
        settings: Settings | None = Settings()
    except Exception as invalid:  # noqa: BLE001 - the settings themselves are the problem
        return explain(invalid, None)
    for cause in (error, error.__cause__, error.__context__):
        if cause is not None and (message := explain(cause, settings)):
            return message
    return None


@click.group(cls=_Cli)
@click.version_option(package_name="vidpipe", prog_name="vidpipe")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
def main(debug: bool) -> None:
    """vidpipe: AI video-production pipelines on Dagster."""


@main.group()
def db() -> None:
    """The pipeline database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Bring the database (VIDPIPE_DATABASE_URL, or the embedded SQLite) to REVISION."""
    from vidpipe_dagster.db import migrate

    migrate.upgrade(revision=revision)
    click.echo(f"database at {migrate.current_revision()}")


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from vidpipe_dagster.db import migrate

    click.echo(migrate.current_revision() or "empty")


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the token admin rights (every route needs them).")
def tokens_create(name: str, admin: bool) -> None:
    """Create a token named NAME and print it once, alone on the last line."""
    from vidpipe_dagster.db.session import session_scope
    from vidpipe_dagster.domain.tokens import create_token

    with session_scope() as session:
        token = create_token(session, name=name, admin=admin)
    kind = "admin token" if admin else "token (not admin: every API route will answer 403)"
    click.echo(f"Created {kind} '{name}'. Store it now; it is not shown again:")
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """List the tokens: name, admin, created, last used, revoked (times in UTC)."""
    from vidpipe_dagster.db.session import session_scope
    from vidpipe_dagster.domain.tokens import list_tokens

    with session_scope() as session:
        rows = [
            (
                token.name,
                "yes" if token.admin else "no",
                _when(token.created_at),
                _when(token.last_used_at) if token.last_used_at else "never",
                _when(token.revoked_at) if token.revoked_at else "-",
            )
            for token in list_tokens(session)
        ]
    if not rows:
        click.echo("No tokens yet: vidpipe tokens create NAME --admin")
        return
    header = ("NAME", "ADMIN", "CREATED", "LAST USED", "REVOKED")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke every live token named NAME; the API refuses it from then on."""
    from vidpipe_dagster.db.session import session_scope
    from vidpipe_dagster.domain.tokens import revoke_tokens

    with session_scope() as session:
        revoked = revoke_tokens(session, name=name)
    if not revoked:
        raise click.ClickException(f"No live token named {name!r} (see vidpipe tokens list)")
    click.echo(f"Revoked {revoked} token{'s' if revoked > 1 else ''} named '{name}'.")


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


SHUTDOWN_GRACE_SECONDS = 3
"""How long a stopping API waits for open responses (live-status streams never end)."""


@main.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the REST API with uvicorn (run `vidpipe db upgrade` first)."""
    import uvicorn

    from vidpipe_dagster.db.session import default_engine, make_sessionmaker
    from vidpipe_dagster.domain.errors import VidpipeError
    from vidpipe_dagster.resources.shared_storage import verify_shared_storage
    from vidpipe_dagster.settings import get_settings

    try:
        verify_shared_storage(get_settings(), make_sessionmaker(default_engine()))
    except VidpipeError as error:
        click.echo(f"Error: {error.message}", err=True)
        raise SystemExit(2) from None

    click.echo(f"vidpipe API on http://{host}:{port} (docs at /docs)")
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


@main.command("demo")
@click.option("--force", is_flag=True, help="Render every node again instead of reusing it.")
def demo(force: bool) -> None:
    """Render the demo pipeline offline through Dagster and print the MP4's path."""
    from vidpipe_dagster.runtime.demo import run_demo_in_foreground
    from vidpipe_dagster.settings import get_settings

    _exit_now(
        run_demo_in_foreground(
            settings=get_settings(),
            echo=click.echo,
            echo_error=lambda line: click.echo(line, err=True),
            force=force,
        )
    )


@main.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-port", default=8000, show_default=True, type=int)
@click.option("--dagster-port", default=3000, show_default=True, type=int)
@click.option(
    "--verbose", is_flag=True, help="Show the services' own logs (Dagster's INFO, uvicorn's)."
)
def dev(host: str, api_port: int, dagster_port: int, verbose: bool) -> None:
    """Run the API and Dagster (webserver + daemon) together; Ctrl-C stops both.

    Quiet by default: only the URLs, warnings and errors are printed.
    """
    from vidpipe_dagster.runtime.devserver import run_dev
    from vidpipe_dagster.settings import get_settings

    _exit_now(
        run_dev(
            settings=get_settings(),
            host=host,
            api_port=api_port,
            dagster_port=dagster_port,
            verbose=verbose,
            echo=click.echo,
        )
    )


def _exit_now(code: int) -> None:
    """Exit with ``code`` once the output is flushed, skipping the interpreter's teardown.

    The commands that stop child processes have nothing left to clean up; tearing down
    their imports takes about a second on a busy machine, past the 5 s a Ctrl-C may take.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
