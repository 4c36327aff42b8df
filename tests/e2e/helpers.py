"""Small helpers for the real-browser tests (Playwright sync API)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = PROJECT_ROOT / "artifacts" / "screenshots"

# Streamlit 1.67 puts the script-run state on the app root: initial, running,
# notRunning, rerunRequested, stopRequested, compilationError.
IDLE_SELECTOR = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION_SELECTOR = '[data-testid="stException"]'

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
IGNORED_SCHEMES = {"data", "blob", "about"}


def wait_idle(page, timeout: float = 30000) -> None:
    """Wait until the Streamlit script has finished running (timeout in ms).

    Right after a click the state can still read notRunning for a moment,
    before the rerun starts: wait for the content you expect first, then call this.
    """
    page.wait_for_selector(IDLE_SELECTOR, timeout=timeout)


def assert_no_exception(page) -> None:
    """Fail if the page shows a Streamlit exception box; include its text."""
    boxes = page.locator(EXCEPTION_SELECTOR)
    n = boxes.count()
    assert n == 0, f"{n} exception(s) on the page:\n" + "\n---\n".join(boxes.all_inner_texts())


def external_requests(requests: list[str], base_url: str | None = None) -> list[str]:
    """Return the URLs whose host is not the local server (data:, blob:, about: are ignored)."""
    allowed = set(LOCAL_HOSTS)
    if base_url:
        allowed.add(urlsplit(base_url).hostname or "")
    out = []
    for url in requests:
        parts = urlsplit(url)
        if parts.scheme in IGNORED_SCHEMES:
            continue
        if parts.hostname not in allowed:
            out.append(url)
    return out


# Streamlit scrolls inside <main data-testid="stMain">, not the document, so
# Playwright's full_page alone stops at the viewport: measure the tallest
# scrolling element and grow the viewport to it for the shot.
_CONTENT_HEIGHT_JS = """() => Math.max(document.documentElement.scrollHeight,
    ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarContent"]')]
        .map(e => e.scrollHeight))"""
_TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
MAX_SCREENSHOT_HEIGHT = 20000  # px


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as artifacts/screenshots/NAME.png and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    size = page.viewport_size
    height = min(int(page.evaluate(_CONTENT_HEIGHT_JS)), MAX_SCREENSHOT_HEIGHT)
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.evaluate(_TWO_FRAMES_JS)
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if size:
            page.set_viewport_size(size)
    return path
