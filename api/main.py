"""The FastAPI app factory. ``uvicorn api.main:app`` serves the default app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api.errors import install_error_handlers
from api.routes import health, nodes, pipelines
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.settings import Settings, get_settings


def create_app(
    *,
    settings: Settings | None = None,
    sessions: sessionmaker[Session] | None = None,
    notify_change: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app. ``notify_change`` is called after every committed write."""
    settings = settings or get_settings()
    app = FastAPI(
        title="vidpipe",
        summary="The video-production editor's REST API.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.sessions = sessions or make_sessionmaker(make_engine(settings.resolved_database_url))
    app.state.notify_change = notify_change or (lambda: None)
    install_error_handlers(app)
    for module in (health, pipelines, nodes):
        app.include_router(module.router)
    return app


app = create_app()
