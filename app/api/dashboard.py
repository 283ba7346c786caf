"""The built-in dashboard: ``GET /`` serves the page, ``/static`` its scripts and styles.

The page is plain HTML, CSS and JavaScript shipped in ``app/static`` (no build
step, no CDN) and talks only to the public ``/api/v1`` contract. It is served
with a Content-Security-Policy that allows scripts from this origin only, no
inline script or style, and Trusted Types so that no string can reach an HTML
sink such as ``innerHTML``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # 'self' covers ws:/wss: of the same host (CSP Level 3).
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)

static_files = StaticFiles(directory=STATIC_DIR)
"""Mounted at ``/static`` by ``create_app``."""


@router.get("/")
async def dashboard() -> FileResponse:
    """The dashboard page (sign-in, uploads, tasks, statistics)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)
