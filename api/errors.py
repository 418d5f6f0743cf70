"""One place that turns every failure into the editor's error shape.

``{"error": {"type": ..., "message": ...}}``: domain errors carry their status; FastAPI's
own 404/405 and request errors are reshaped; anything unexpected is a 500 without a trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidpipe_dagster.domain.errors import VidpipeError

log = logging.getLogger(__name__)

HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "service_unavailable",
}


class ApiError(VidpipeError):
    """An HTTP-level error (auth, malformed body) raised by the API layer itself."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = HTTP_TYPES.get(status_code, "error")


def error_response(status_code: int, error_type: str, message: str) -> JSONResponse:
    """A JSON response in the error shape."""
    return JSONResponse(
        status_code=status_code, content={"error": {"type": error_type, "message": message}}
    )


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = error.get("msg", "is invalid")
        parts.append(f"{location}: {message}" if location else message)
    return ", ".join(parts) or "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(VidpipeError)
    async def _domain(_request: Request, error: VidpipeError) -> JSONResponse:
        response = error_response(error.status_code, error.error_type, error.message)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(int(retry_after))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _describe(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "Request failed"
        if error.status_code == 404 and message == "Not Found":
            message = "Route not found"
        return error_response(
            error.status_code, HTTP_TYPES.get(error.status_code, "error"), message
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal server error")
