"""``GET /healthz``: liveness plus a database round trip."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import DATABASE_RETRY_AFTER_SECONDS, DATABASE_UNAVAILABLE, error_response
from api.responses import Health, HealthDown

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": HealthDown, "description": "The database does not answer"}},
)
def healthz(request: Request) -> JSONResponse:
    """200 ``{"status": "ok"}`` when the database answers, else a 503 in the error shape."""
    began = time.monotonic()
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        request.app.state.database_outage.down(error, began=began)
        return error_response(
            503,
            "service_unavailable",
            DATABASE_UNAVAILABLE,
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )
    return JSONResponse(content={"status": "ok"})
