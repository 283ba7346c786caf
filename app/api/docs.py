"""The interactive API docs, served whole by this app: ``/docs`` and ``/redoc``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start Swagger UI
with an inline script: blank without Internet access, and at odds with a
strict Content-Security-Policy. Here the assets come from the
``fastapi-offline`` package (Swagger UI and ReDoc builds, mounted at
``/docs-assets``; ReDoc's without the one outside image it names), Swagger UI
is started by ``app/static/docs/swagger-init.js``,
and both pages are served with a policy that lets them load nothing from
anywhere but this origin.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import anyio
import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # both renderers set style attributes and ReDoc inserts <style> elements
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        # 'self' covers the schema and Swagger UI's "Try it out" requests
        "connect-src 'self'",
        # ReDoc runs its search index in a worker made from a blob
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

REDOC_JS = "redoc.standalone.js"
REDOC_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
"""The one outside address in ReDoc's build: the "API docs by Redocly" logo, fetched as
soon as the page renders. Served without it, the image has no source and hides itself."""

router = APIRouter(include_in_schema=False)
_redoc_js: bytes | None = None

assets = StaticFiles(directory=ASSETS_DIR)
"""Mounted at ``ASSETS_URL`` by ``create_app``."""


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{head}</head><body>{body}</body></html>\n",
        headers=HEADERS,
    )


def _urls(request: Request) -> tuple[str, str, str]:
    """The schema's, the assets' and the dashboard's static files' URLs (behind any root_path)."""
    root = request.scope.get("root_path", "")
    openapi = f"{root}{request.app.openapi_url}"
    return escape(openapi), escape(f"{root}{ASSETS_URL}"), escape(f"{root}/static")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: every operation, with "Try it out"."""
    openapi, assets_url, static = _urls(request)
    return _page(
        f"{request.app.title} - Swagger UI",
        f'<link rel="icon" type="image/png" href="{assets_url}/favicon.png">'
        f'<link rel="stylesheet" href="{assets_url}/swagger-ui.css">',
        f'<div id="swagger-ui" data-openapi-url="{openapi}"></div>'
        f'<script src="{assets_url}/swagger-ui-bundle.js"></script>'
        f'<script src="{static}/docs/swagger-init.js"></script>',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same schema as a reference document."""
    openapi, assets_url, _ = _urls(request)
    return _page(
        f"{request.app.title} - ReDoc",
        f'<link rel="icon" type="image/png" href="{assets_url}/favicon.png">',
        f'<redoc spec-url="{openapi}"></redoc>'
        f'<script src="{assets_url}/redoc.standalone.js"></script>',
    )


@router.get(f"{ASSETS_URL}/{REDOC_JS}")
async def redoc_js() -> Response:
    """ReDoc's build without its outside logo (this route comes before the assets' mount)."""
    global _redoc_js
    if _redoc_js is None:
        build = await anyio.Path(ASSETS_DIR / REDOC_JS).read_bytes()
        _redoc_js = build.replace(REDOC_LOGO, b'""')
    return Response(
        _redoc_js,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
