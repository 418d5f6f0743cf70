"""What the API answers, for the OpenAPI document: response models and error declarations.

Handlers build their JSON with :mod:`api.schemas`' serialisers and return a ``JSONResponse``
themselves, so these models describe the bodies without FastAPI re-validating them on each
request. Where the two contract generations (``VIDPIPE_API_CONTRACT``) differ, both shapes
are declared (``anyOf``, or one status per generation) and the description says which is which.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

JsonObject = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    """What went wrong: a machine-readable ``type`` and a sentence for a person."""

    type: str = Field(description="e.g. not_found, validation_error, conflict")
    message: str


class ErrorBody(BaseModel):
    """The error shape every route answers with."""

    error: ErrorDetail


class EditorRefusal(BaseModel):
    """The editor generation's flat refusal (a node not ready to execute, no output)."""

    error: str


class ErrorOrRefusal(RootModel[ErrorBody | EditorRefusal]):
    """The error shape; in the editor generation some 422s are the flat ``{"error": "..."}``."""


class NodePublic(_Body):
    """A node as the editor reads it."""

    uuid: str
    pipeline_uuid: str
    title: str | None
    type: str
    status: str = Field(description="pending, in_progress, completed, failed, ...")
    inputs: JsonObject
    config: JsonObject
    asset: JsonObject | None
    metadata: JsonObject | None = Field(description="execution metadata, snake_case keys")
    output: JsonObject | None = Field(
        description="what the node made; keys camelCase (s3Key) in the editor generation, "
        "snake_case (s3_key) in the seed generation"
    )
    is_valid: bool
    validation_errors: JsonObject = Field(
        description='{} when valid, else {"inputs": {slot: [..]}, "config": {field: [..]}} '
        'or {"invalid_type": "..."}'
    )
    created_at: str | None = Field(description="ISO 8601, UTC")
    updated_at: str | None = Field(description="ISO 8601, UTC")


class PipelinePublic(_Body):
    """A pipeline as the editor reads it."""

    uuid: str
    title: str | None
    version: str | None
    config: JsonObject
    metadata: JsonObject
    created_at: str | None = Field(description="ISO 8601, UTC")
    updated_at: str | None = Field(description="ISO 8601, UTC")


class PipelineWithNodes(PipelinePublic):
    """A pipeline with its nodes in creation order."""

    nodes: list[NodePublic]


class PageMeta(BaseModel):
    """Where a page of a list stands."""

    current_page: int
    total_count: int
    total_pages: int


class PipelineList(BaseModel):
    """A page of pipelines, newest first."""

    results: list[PipelinePublic]
    meta: PageMeta


class PipelineEnvelope(BaseModel):
    """``{"pipeline": ...}`` without its nodes."""

    pipeline: PipelinePublic


class PipelineDetailEnvelope(BaseModel):
    """``{"pipeline": ...}`` with its nodes."""

    pipeline: PipelineWithNodes


class NodeEnvelope(BaseModel):
    """``{"node": ...}``."""

    node: NodePublic


class NodeList(BaseModel):
    """``{"nodes": [...]}``."""

    nodes: list[NodePublic]


class NodeExecuted(BaseModel):
    """Seed generation, 202: the node and the Dagster run materializing it."""

    node: NodePublic
    run_id: str


class NodesExecuted(BaseModel):
    """202: the selected nodes (in run order) and the Dagster run materializing them."""

    nodes: list[NodePublic]
    run_id: str


class ReusedFrom(_Body):
    """The finished node whose output a reusable node would take."""

    node_uuid: str
    pipeline_uuid: str
    title: str | None
    process_uuid: str | None


class EstimateLine(_Body):
    """One node's estimated cost of one run."""

    node_uuid: str
    title: str | None
    type: str
    provider: str | None
    usd: float = Field(description="estimated cost in US dollars")
    quantity: float
    unit: str | None = Field(description="what quantity counts: seconds, characters, ...")
    rate: float | None = Field(description="US dollars per unit")
    source: str | None
    as_of: str | None
    note: str | None
    reusable: bool = Field(description="finished work with the same inputs would be reused")
    saved_usd: float | None = Field(
        default=None, description="when reusable: what reuse saves, US dollars"
    )
    reused_from: ReusedFrom | None = Field(default=None, description="when reusable")


class Estimate(_Body):
    """Every node's estimate, the total and the budget, in US dollars."""

    pipeline_uuid: str
    nodes: list[EstimateLine]
    total_usd: float
    budget_usd: float | None
    spent_usd: float
    remaining_usd: float | None
    saved_usd: float = Field(description="what reusing finished work saves, US dollars")


class EstimateEnvelope(BaseModel):
    """``{"estimate": ...}``."""

    estimate: Estimate


class Health(BaseModel):
    """The API and its database answer."""

    status: str = Field(description='"ok"')


class HealthDown(_Body):
    """The database does not answer."""

    status: str = Field(description='"error"')
    database: str = Field(description='"unreachable"')


class WebhookReceipt(BaseModel):
    """A verified callback: what it did (``ignored`` when no node waits on the job)."""

    received: bool
    outcome: str


DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or not the wrapped object",
    401: "No bearer token, or a token that is unknown or revoked",
    403: "The token is not an admin token",
    404: "No such pipeline or node (or route)",
    409: "A selected node is already running or queued in Dagster",
    413: "The request body is larger than VIDPIPE_MAX_BODY_BYTES",
    422: "The request is well-formed but refused (invalid field, not ready, over budget)",
    503: "A dependency (database, provider) is unavailable; retry later",
}

ADMIN_ERRORS = (401, 403, 422, 503)
"""What every admin route can answer: auth failures, a bad parameter, the database down."""

BODY_ERRORS = (400, 413)
"""What a route that reads a body adds."""


def errors(*codes: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` declaring each of ``codes`` with the error shape (``notes`` replace
    the usual descriptions)."""
    notes = notes or {}
    return {
        code: {"model": ErrorBody, "description": notes.get(code, DESCRIPTIONS[code])}
        for code in codes
    }


EDITOR_422: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorOrRefusal,
        "description": DESCRIPTIONS[422]
        + '; in the editor generation a node not ready is the flat {"error": "..."}',
    }
}
"""A 422 that the editor generation answers flat."""


def reshape_validation_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Point every 422 FastAPI declared on its own (``HTTPValidationError``) at the error
    shape, which is what :mod:`api.errors` answers, and drop FastAPI's two schemas."""
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer and "HTTPValidationError" in str(answer):
                answer["description"] = DESCRIPTIONS[422]
                answer["content"] = {"application/json": {"schema": error_ref}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document
