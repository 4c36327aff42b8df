"""Small helpers for the real-browser tests (Playwright sync API)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_TIMEOUT = 120.0  # seconds; a loaded 2-core machine can take a while
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


GRID_EDITOR = '[data-testid="portal"] input.gdg-input'  # the cell editor glide-data-grid opens
GRID_HEADER_PX = 35  # st.data_editor's header row and body rows are 35 px high in 1.67
GRID_ROW_PX = 35


def open_grid_editor(page, grid, row: int, col: int, n_cols: int = 3, attempts: int = 3):
    """Open the editor of cell (row, col) of an st.data_editor located by `grid`; return it.

    The grid is drawn on a canvas, so the cell is double-clicked by position (columns share the
    grid's width equally in a stretched editor, rows are 35 px high). The double click opens the
    grid's own <input> overlay, returned as a locator. A double click that lands while the page is
    still moving (images arriving, a rerun redrawing the grid) opens no editor: it is retried.
    """
    editor = page.locator(GRID_EDITOR)
    for attempt in range(attempts):
        grid.locator("canvas").first.wait_for()
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        x = box["x"] + box["width"] / n_cols * (col + 0.5)
        y = box["y"] + GRID_HEADER_PX + GRID_ROW_PX * (row + 0.5)
        page.mouse.dblclick(x, y)
        try:
            editor.wait_for(state="visible", timeout=3000)
            return editor
        except Exception:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)


def edit_grid_cell(page, grid, row: int, col: int, value, n_cols: int = 3) -> None:
    """Write `value` into cell (row, col) of an st.data_editor and commit it with Enter.

    The value is filled into the grid's editor element itself, not typed into whatever has the
    keyboard focus, so no keystroke can go astray.
    """
    editor = open_grid_editor(page, grid, row, col, n_cols)
    editor.fill(str(value))
    editor.press("Enter")
    editor.wait_for(state="detached", timeout=5000)


class ServerError(RuntimeError):
    """The Streamlit server died or never became healthy; the message holds its logs."""


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):
        return None


@contextmanager
def serve(app: str, port: int, log_dir: Path, extra_args: tuple = ()):
    """Run `streamlit run app` on 127.0.0.1:port until the block ends; yields the base URL."""
    cmd = [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none",  # no reloads needed; saves CPU
           *extra_args]
    out_path, err_path = Path(log_dir) / "stdout.log", Path(log_dir) / "stderr.log"
    base_url = f"http://127.0.0.1:{port}"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _health(f"{base_url}/_stcore/health") != "ok":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"streamlit did not become healthy (exit code {proc.poll()}).\n"
                                  f"command: {' '.join(cmd)}\nstderr:\n{err_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ---------------------------------------------------------------- accessibility (axe-core)

AXE_JS = Path(__file__).with_name("axe.min.js")  # axe-core 4.14.1, vendored with its licence header (MPL-2.0)
A11Y_DIR = PROJECT_ROOT / "artifacts" / "a11y"
FAILING_IMPACTS = ("critical", "serious")

# Frames of components (streamlit-image-coordinates, st.components.v1.html) are checked too: wait until
# each has its document and pictures, and every clickable picture has the alt text the page script gives it.
_FRAMES_READY_JS = """() => [...document.querySelectorAll('iframe')].every(f => {
    let d; try { d = f.contentDocument; } catch (e) { return true; }
    if (!d || d.readyState !== 'complete' || d.location.href === 'about:blank' && !f.srcdoc) return false;
    return [...d.images].every(i => i.complete);
  }) && [...document.querySelectorAll('[data-alt-for]')].every(p => {
    const f = document.querySelector('.st-key-' + CSS.escape(p.dataset.altFor) + ' iframe');
    const img = f && f.contentDocument && f.contentDocument.getElementById('image');
    return !f || (img && img.alt === p.textContent.trim());
  })"""

_RUN_AXE_JS = """async allowed => {
    const r = await axe.run(document, {iframes: true, frameWaitTime: 10000, elementRef: true,
                                        resultTypes: ['violations']});
    return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({
        target: n.target, html: n.html.slice(0, 300), summary: n.failureSummary,
        allowed: (allowed.find(([rule, sel]) => rule === v.id && n.element && n.element.matches(sel)) || [])[2]
                 || null}))}));
  }"""


def _inject_axe(page) -> None:
    source = AXE_JS.read_text()
    for frame in page.frames:
        try:
            if not frame.evaluate("() => !!window.axe"):
                frame.evaluate(source)
        except Exception:  # a frame that went away during a rerun: it is not on the page any more
            pass


def axe_violations(page) -> list[dict]:
    """Run axe-core (every rule but the experimental ones) on the page and its frames; return its violations:
    [{id, impact, help, nodes: [{target, html, summary, allowed (the reason, or None)}]}]."""
    from tests.e2e.a11y_allowed import ALLOWED

    wait_idle(page)
    page.wait_for_function(_FRAMES_READY_JS, timeout=30000)
    page.evaluate(_TWO_FRAMES_JS)
    _inject_axe(page)
    return page.evaluate(_RUN_AXE_JS, [list(a) for a in ALLOWED])


def check_a11y(page, state_name: str) -> list[dict]:
    """Check the page as it is now with axe-core; fail on any critical or serious violation the app causes
    (those allowed by a11y_allowed.py, by rule and element, aside). Every violation of every impact is
    saved to artifacts/a11y/STATE_NAME.json. Returns the violations."""
    violations = axe_violations(page)
    A11Y_DIR.mkdir(parents=True, exist_ok=True)
    (A11Y_DIR / f"{state_name}.json").write_text(json.dumps(violations, indent=1))
    failing = [f"{v['id']} ({v['impact']}): {v['help']}\n    at {n['target']}\n    {n['html'][:200]}\n    "
               + (n["summary"] or "").replace("\n", "\n    ")
               for v in violations if v["impact"] in FAILING_IMPACTS for n in v["nodes"] if not n["allowed"]]
    assert not failing, f"{state_name}: {len(failing)} accessibility failure(s) (axe-core):\n" + "\n".join(failing)
    return violations
