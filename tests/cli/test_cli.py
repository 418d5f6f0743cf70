"""The ``vidpipe`` command line on a fresh embedded home."""

from __future__ import annotations

import os
import subprocess
import sys

from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.tokens import authenticate


def _vidpipe(home, *args):
    env = {**os.environ, "VIDPIPE_HOME": str(home)}
    env.pop("VIDPIPE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "vidpipe_dagster.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_db_upgrade_and_tokens_create_on_the_embedded_database(tmp_path):
    result = _vidpipe(tmp_path, "db", "upgrade")
    revision = migrate.current_revision(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    assert revision and result.stdout.strip() == f"database at {revision}"
    assert (tmp_path / "vidpipe.db").exists()

    admin = _vidpipe(tmp_path, "tokens", "create", "editor", "--admin").stdout.splitlines()[-1]
    plain = _vidpipe(tmp_path, "tokens", "create", "viewer").stdout.splitlines()[-1]
    assert admin != plain and admin.startswith("vp_")

    engine = make_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            record = authenticate(session, admin)
            assert (record.name, record.admin) == ("editor", True)
            assert authenticate(session, plain).admin is False
            assert authenticate(session, admin + "x") is None
            assert record.token_sha256 != admin
    finally:
        engine.dispose()
