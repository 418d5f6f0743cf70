"""``/docs`` (Swagger UI) and ``/redoc`` served with no network.

FastAPI's own pages load their JavaScript and CSS from a CDN, so offline they are blank.
Here the assets come from the ``fastapi-offline`` package's static files, mounted under
``/docs/static``, and the pages point at them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.responses import reshape_validation_errors

STATIC_PREFIX = "/docs/static"


def asset_directory() -> Path:
    """The directory holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
    ``redoc.standalone.js``."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve the UI assets and the two documentation pages on ``app``, and its OpenAPI
    document with the error shape in place of FastAPI's ``HTTPValidationError``.

    The app must be built with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages
    are not registered first.
    """
    build_document = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = reshape_validation_errors(build_document())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(STATIC_PREFIX, StaticFiles(directory=asset_directory()), name="docs-static")
    title = f"{app.title} API"
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            oauth2_redirect_url=redirect_url,
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{STATIC_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
