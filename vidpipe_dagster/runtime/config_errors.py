"""Configuration problems explained in a line or two: the setting, its value, the fix.

The CLI catches what escapes a command and asks :func:`explain` for the sentence a person
needs (``VIDPIPE_DATABASE_URL=postgresql://vidpipe:***@db:5432/vidpipe: connection refused.
Start PostgreSQL there or point VIDPIPE_DATABASE_URL at a running server.``) instead of a
traceback. Passwords in URLs are masked; secret settings are never printed.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from vidpipe_dagster.settings import Settings

DATABASE = "VIDPIPE_DATABASE_URL"
HOME = "VIDPIPE_HOME"
STORAGE = "VIDPIPE_STORAGE_URL"


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)


def explain(error: BaseException, settings: Settings | None) -> str | None:
    """One or two lines for a configuration problem, or None for anything else."""
    import pydantic

    if isinstance(error, pydantic.ValidationError):
        return _invalid_settings(error)
    if settings is None:
        return None
    for explainer in (_database_problem, _file_problem):
        message = explainer(error, settings)
        if message:
            return message
    return None


def _invalid_settings(error: object) -> str:
    problems = []
    for item in error.errors():  # type: ignore[attr-defined]
        name = "VIDPIPE_" + "_".join(str(part) for part in item["loc"]).upper()
        problems.append(f"{name}: {item['msg']}")
    return "Invalid setting " + "; ".join(problems) + ". Fix the environment variable."


def _database_problem(error: BaseException, settings: Settings) -> str | None:
    from sqlalchemy import exc

    url = settings.database_url or settings.resolved_database_url
    shown = f"{DATABASE}={mask_url(url)}"
    if isinstance(error, exc.NoSuchModuleError | exc.ArgumentError):
        return (
            f"{shown} is not a database URL vidpipe can use. Use postgresql://user@host/db "
            "or sqlite:///path/to/vidpipe.db."
        )
    if not isinstance(error, exc.OperationalError | exc.InterfaceError):
        return None
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    missing = re.search(r'database "([^"]+)" does not exist', detail)
    if missing:
        return (
            f"{shown}: the database {missing.group(1)!r} does not exist. Create it "
            f"(createdb {missing.group(1)}) or fix {DATABASE}."
        )
    if "unable to open database file" in detail:
        return (
            f"{shown}: the SQLite file cannot be created or opened. Point {DATABASE} (or "
            f"{HOME}) at a writable directory."
        )
    if "no such table" in detail or re.search(r'relation "[^"]+" does not exist', detail):
        return f"{shown} has no vidpipe tables yet. Run `vidpipe db upgrade` first."
    if "database is locked" in detail:
        return None
    return (
        f"{shown}: cannot connect ({detail}). Start the database server or point "
        f"{DATABASE} at a running one."
    )


def _file_problem(error: BaseException, settings: Settings) -> str | None:
    if not isinstance(error, OSError) or error.errno not in _FILE_ERRNOS:
        return None
    filename = Path(str(error.filename)) if error.filename else None
    reason = error.strerror or str(error)
    for name, value, root in _roots(settings):
        if filename is not None and _within(filename, root):
            return (
                f"{name}={value}: cannot write {filename} ({reason}). Point {name} at a "
                "directory this user can write."
            )
    return None


_FILE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOENT, errno.ENOSPC}


def _roots(settings: Settings) -> list[tuple[str, str, Path]]:
    """``(setting, value as shown, directory)`` for each place vidpipe writes files."""
    roots = []
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and settings.database_url:
        roots.append((DATABASE, mask_url(settings.database_url), Path(url.split("///")[1]).parent))
    if settings.storage_url and settings.storage_url.startswith("file:"):
        from lambdas import uris

        roots.append((STORAGE, settings.storage_url, uris.file_uri_to_path(settings.storage_url)))
    roots.append((HOME, str(settings.home), settings.resolved_home))
    return roots


def _within(path: Path, root: Path) -> bool:
    try:
        resolved, base = path.expanduser().absolute(), root.expanduser().absolute()
    except OSError:
        return False
    return resolved == base or base in resolved.parents or resolved in base.parents
