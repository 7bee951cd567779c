"""The console and the docs pages are served by the app itself: every asset they name answers here, none is
fetched from elsewhere, and a Content-Security-Policy of 'self' says so to the browser."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
REMOTE = re.compile(r"https?://(?!www\.w3\.org/2000/svg)")  # an SVG namespace is a name, not a request


def test_the_console_redirects_to_its_folder_and_serves_its_page(client: TestClient) -> None:
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code in (301, 302, 307)
    assert redirect.headers["location"].endswith("/console/")
    page = client.get("/console/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="alert-rows"' in page.text


@pytest.mark.parametrize(("page", "base"), [("/console/", "/console/"), ("/docs", "/"), ("/redoc", "/")])
def test_every_asset_a_page_names_is_served_by_the_app(client: TestClient, page: str, base: str) -> None:
    html = client.get(page).text
    assets = [url for url in ASSET.findall(html) if not url.startswith(("data:", "#", "console/", "../"))]
    assert assets, f"{page} names no asset?"
    for url in assets:
        assert not REMOTE.match(url), f"{page} loads {url} from elsewhere"
        path = url if url.startswith("/") else base + url
        response = client.get(path)
        assert response.status_code == 200, path
        assert not REMOTE.search(response.text) or path.endswith(("swagger-ui-bundle.js", "redoc.standalone.js"))


def test_the_docs_pages_use_the_offline_viewers(client: TestClient) -> None:
    assert "/docs/assets/swagger-ui-bundle.js" in client.get("/docs").text
    assert "/docs/assets/redoc.standalone.js" in client.get("/redoc").text
    assert "cdn.jsdelivr.net" not in client.get("/docs").text
