"""Baseline apps for benchmarks/api.py: FastAPI at its floor, serving a fixed body.

``floor``: the route returns the body as pre-encoded bytes (no encoding, no database): what
FastAPI and uvicorn cost per request. ``plain_dict``: the route returns the same body as a
dict, so FastAPI encodes it (``jsonable_encoder`` + ``JSONResponse``) on every request. Both
read the body the real API answered from ``VIDPIPE_BENCH_BODY`` (a JSON file).

    uvicorn benchmarks.api_baselines:floor      # or :plain_dict
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI, Response

_BODY = Path(os.environ.get("VIDPIPE_BENCH_BODY", "body.json"))


def _body_bytes() -> bytes:
    return _BODY.read_bytes() if _BODY.exists() else b"{}"


floor = FastAPI()
plain_dict = FastAPI()
_encoded = _body_bytes()
_decoded = json.loads(_encoded)


@floor.get("/v1/admin/video_production/pipelines/{pipeline_uuid}")
def floor_pipeline(pipeline_uuid: str) -> Response:
    """The real API's answer, pre-encoded."""
    return Response(_encoded, media_type="application/json")


@plain_dict.get("/v1/admin/video_production/pipelines/{pipeline_uuid}")
def dict_pipeline(pipeline_uuid: str) -> dict:
    """The real API's answer as a dict, encoded by FastAPI on each request."""
    return _decoded
