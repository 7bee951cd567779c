"""/docs (Swagger UI) and /redoc, offline: their assets come from the fastapi-offline package, served by this app.

With FRAUD_API_KEY set the pages themselves open without the key (they are static and hold no data), while
/openapi.json and every route stay protected: the page asks for the key once, fetches the schema with it,
pre-fills Swagger UI's "Authorize" and sends it on every "Try it out" call.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.routes.console import CONTENT_SECURITY_POLICY

VIEWER_ASSETS = Path(str(files("fastapi_offline") / "static"))
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and a favicon, as the package ships them."""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="fraudstream-root" content="{root}">
  <title>{title}</title>
  <link rel="icon" href="{root}/docs/assets/favicon.png">
  {styles}
  <link rel="stylesheet" href="{root}/console/assets/key.css">
  <script src="{root}/docs/assets/{viewer_js}" defer></script>
  <script src="{root}/console/assets/api.js" defer></script>
  <script src="{root}/console/assets/docs.js" defer></script>
</head>
<body>
  <dialog id="key-dialog">
    <form id="key-form" method="dialog">
      <h2>API key needed</h2>
      <p>This API is protected (FRAUD_API_KEY). Enter the key once; it is kept for this browser tab only and sent
        with every call you try from this page.</p>
      <input id="key-input" type="password" autocomplete="off" placeholder="API key" required>
      <p id="key-error" class="error" hidden>That key was refused.</p>
      <button type="submit" id="key-submit">Use this key</button>
    </form>
  </dialog>
  <div id="docs" data-viewer="{viewer}"></div>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


def _page(request: Request, viewer: str) -> HTMLResponse:
    root = html.escape(request.scope.get("root_path", ""), quote=True)
    title = request.app.title
    if viewer == "swagger":
        styles, viewer_js = f'<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">', "swagger-ui-bundle.js"
        title = f"{title} - Swagger UI"
    else:
        styles, viewer_js = "", "redoc.standalone.js"
        title = f"{title} - ReDoc"
    body = PAGE.format(root=root, title=html.escape(title), styles=styles, viewer_js=viewer_js, viewer=viewer)
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY.replace(
                "default-src 'self';", "default-src 'self'; worker-src 'self' blob:;"
            )
        },
    )


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "swagger")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc")


def mount_docs(app: FastAPI) -> None:
    """The two pages and the viewers' assets under /docs/assets (the app must be built with docs_url=None)."""
    app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=VIEWER_ASSETS), name="docs-assets")
