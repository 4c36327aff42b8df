"""Fixtures for the real-browser tests: a Streamlit server and Debian's Chromium.

Every test under tests/e2e gets the `e2e` marker, so `-m "not e2e"` skips them.
CNNVIZ_APP (default "app.py", relative to the project root) picks the script to serve.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, ServerError, serve
from tests.torchref import unavailable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
VIEWPORT = {"width": 1400, "height": 900}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(reason: str):
    # On CI a missing browser must fail, or CI could go green without browser tests.
    unavailable(reason, "browser tests")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """Start `streamlit run` on a free local port; yield its base URL."""
    app = os.environ.get("CNNVIZ_APP", "app.py")
    try:
        with serve(app, _free_port(), tmp_path_factory.mktemp("streamlit")) as base_url:
            yield base_url
    except ServerError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright; never a downloaded browser."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: python -m pip install -r requirements-dev.txt")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser, app_server):
    """A fresh page on the app (base_url set, so page.goto("/") works).

    page.requests lists every request URL; page.errors every uncaught page error.
    """
    context = browser.new_context(viewport=VIEWPORT, base_url=app_server)
    p = context.new_page()
    p.requests = []
    p.errors = []
    context.on("request", lambda r: p.requests.append(r.url))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    try:
        yield p
    finally:
        context.close()
