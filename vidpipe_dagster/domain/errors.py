"""Domain errors: a small hierarchy the API maps to HTTP responses in one place."""

from __future__ import annotations


class VidpipeError(Exception):
    """Base of errors a caller can act on; ``status_code`` and ``error_type`` say how."""

    status_code = 400
    error_type = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(VidpipeError):
    """A pipeline or node that does not exist (or belongs to another pipeline)."""

    status_code = 404
    error_type = "not_found"


class ValidationError(VidpipeError):
    """Input that breaks a rule: bad inputs, a cycle, a node that is not ready."""

    status_code = 422
    error_type = "validation_error"


class UnavailableError(VidpipeError):
    """A service vidpipe depends on (e.g. the Dagster webserver) cannot be reached."""

    status_code = 503
    error_type = "service_unavailable"


class ConflictError(VidpipeError):
    """A request that clashes with work already under way (e.g. a node already running)."""

    status_code = 409
    error_type = "conflict"
