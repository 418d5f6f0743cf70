"""The pipeline database: models, engine/session factory, Alembic migrations."""

from vidpipe_dagster.db import names as _names  # noqa: F401  (records names on every flush)
from vidpipe_dagster.db.models import ApiToken, Base, Node, Pipeline

__all__ = ["ApiToken", "Base", "Node", "Pipeline"]
