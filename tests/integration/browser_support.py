"""Headless Chromium for the browser tests: the system's browser (Debian's `chromium`) driven by Playwright.

Playwright's own browser downloads are never used (they come from outside the package registries): the tests find
a Chromium on the machine (FRAUD_CHROMIUM, else `chromium`, `chromium-browser` or `google-chrome` on the PATH) and
skip, saying why, when there is none or Playwright is not installed. `make setup` installs Playwright; `.ci/run`
installs the browser (`apt-get install chromium`). Every launch gets a fresh profile (Playwright's temporary
user-data-dir) and the flags that keep Chromium quiet on a closed network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
"""Where the tests leave their screenshots for a developer to look at (build/ is git-ignored)."""
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    configured = os.environ.get("FRAUD_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@dataclass
class Page:
    """A Playwright page that records every request it makes (URL and headers)."""

    page: Any
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def foreign(self, origin: str) -> list[str]:
        """URLs requested from anywhere but ``origin`` (scheme://host:port); data: and blob: URLs stay local."""
        allowed = urlsplit(origin)
        return [
            url
            for url, _ in self.requests
            if urlsplit(url).scheme not in ("data", "blob")
            and (urlsplit(url).scheme, urlsplit(url).netloc) != (allowed.scheme, allowed.netloc)
        ]

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser, or pytest.skip with the reason."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]' installs it)")
    executable = chromium_path()
    if executable is None:
        reason = "no Chromium found: `make browser` (apt-get install chromium), or set FRAUD_CHROMIUM to one"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it in .ci/run, so this is a broken CI machine")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, width: int = 1600, height: int = 1000) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    recorded = Page(context.new_page())
    recorded.page.on("request", lambda request: recorded.requests.append((request.url, request.headers)))
    recorded.page.set_default_timeout(30_000)
    return recorded
