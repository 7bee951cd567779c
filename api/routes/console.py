"""The alert console at /console/: one page and its assets, all served by this app (it works offline).

The page is static and holds no data: it loads without the API key, then asks for the key (when FRAUD_API_KEY is
set) before its first call to the API, and sends it on every call. A Content-Security-Policy of 'self' keeps it
from loading anything from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
"""Everything the console and the docs load comes from this app; inline styles are allowed (Swagger UI uses them)."""

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_redirect(request: Request) -> RedirectResponse:
    """The page lives at /console/, so that its relative asset paths work behind any root path."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/console/")


@router.get("/console/")
async def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def mount_console(app: FastAPI) -> None:
    """The page's route and its assets (JS, CSS) under /console/assets."""
    app.include_router(router)
    app.mount("/console/assets", StaticFiles(directory=CONSOLE_DIR / "assets"), name="console-assets")
