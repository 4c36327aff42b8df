"""How fast the app answers in a real browser (Debian's Chromium through Playwright).

Measures, in one run:
- first page: a fresh browser context (empty cache) opens the app's address (step 1) until the
  prediction is on screen, the script is idle and every picture has loaded (median of --loads);
- filter tweak: on step 2, from pressing Enter on a new weight in the playground's filter grid
  until the new feature map, its numbers and the new prediction are on screen (median of --tweaks;
  Streamlit's data_editor itself waits 150 ms after an edit before it sends it);
and the same two things for a reference page that is nothing but Streamlit (one data_editor and
one line of text in a fragment), so the ratios show what cnnviz adds on top of Streamlit itself.

    python benchmarks/app_latency.py [--tweaks 20 --loads 5]

Targets: tweak <= 300 ms median, first page <= 3 s.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, IDLE_SELECTOR, open_grid_editor, serve  # noqa: E402

REFERENCE_APP = '''
import numpy as np
import streamlit as st

@st.fragment
def playground():
    k = st.data_editor(np.zeros((3, 3)), key="ref_grid", hide_index=True)
    total = float(np.asarray(k, dtype=float).sum())
    st.markdown(f'<div id="pg-result"><p>the network would say: {total:.1f}</p></div>', unsafe_allow_html=True)

st.header("reference")
st.info("Prediction: reference")
playground()
'''
# What a tweak redraws sits in one element with the HTML id "pg-result" (the playground's pictures, its
# range note and its answer line; the reference page's answer line). A tweak counts as shown when that
# box's text has changed and its pictures have finished loading. The check touches only that box, so
# polling it every animation frame costs the page almost nothing.
SHOWN = """() => { const b = document.getElementById('pg-result'); return b ? b.textContent : ''; }"""
IMAGES_LOADED = """() => [...document.querySelectorAll('#pg-result img')].every(i => i.complete)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_page(browser, url: str) -> float:
    """Seconds from navigation to the prediction on screen with the script idle, in a fresh context."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.get_by_text("Prediction").first.wait_for(timeout=60000)
    page.wait_for_selector(IDLE_SELECTOR, timeout=60000)
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=60000, polling="raf")
    dt = time.perf_counter() - t0
    ctx.close()
    return dt


def _settled(page) -> str:
    """What the result box shows once the page has stopped changing (script idle, same text twice)."""
    page.wait_for_selector(IDLE_SELECTOR, timeout=30000)
    shown = page.evaluate(SHOWN)
    while True:
        page.wait_for_timeout(150)
        again = page.evaluate(SHOWN)
        if again == shown:
            return shown
        shown = again


def tweaks(browser, url: str, n: int) -> list[float]:
    """Seconds from pressing Enter on a new weight to the updated map and answer on screen, n times.

    The cell's editor is opened and the number filled in before the clock starts, so the time is
    what the student waits for after committing the number.
    """
    ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = ctx.new_page()
    page.goto(url)
    page.get_by_text("would say").first.wait_for(timeout=60000)
    page.wait_for_selector(IDLE_SELECTOR, timeout=60000)
    grid = page.locator('[data-testid="stDataFrame"]').first
    times = []
    for k in range(n + 1):  # the first edit warms up and is not counted
        before = _settled(page)
        value = (k % 7 + 1) * (1 if k % 2 else -1) * 3  # never the same number twice in a row
        editor = open_grid_editor(page, grid, 1, 1)
        editor.fill(str(value))
        t0 = time.perf_counter()
        editor.press("Enter")
        try:
            page.wait_for_function(f"old => ({SHOWN})() !== old && ({IMAGES_LOADED})()",
                                   arg=before, timeout=30000, polling="raf")
        except Exception:
            page.screenshot(path=str(Path(tempfile.gettempdir()) / "app_latency_timeout.png"), full_page=True)
            raise
        dt = time.perf_counter() - t0
        page.wait_for_selector(IDLE_SELECTOR, timeout=30000)
        if k:
            times.append(dt)
    ctx.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tweaks", type=int, default=20)
    ap.add_argument("--loads", type=int, default=5)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        ref_app = Path(tmp) / "reference_app.py"
        ref_app.write_text(REFERENCE_APP)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        results = {}
        # cnnviz: the first page is what a link to the app opens (step 1); the tweak is on step 2.
        for name, app, first, path in (("cnnviz", "app.py", "/", "/?step=2"), ("reference", str(ref_app), "/", "/")):
            logs = Path(tmp) / name
            logs.mkdir()
            with serve(app, _free_port(), logs) as base:
                first_page(browser, base + first)  # the server's first run imports and loads everything
                loads = [first_page(browser, base + first) for _ in range(a.loads)]
                tw = tweaks(browser, base + path, a.tweaks)
            results[name] = (statistics.median(loads), statistics.median(tw), max(tw))
            print(f"{name:9s}  first page median {results[name][0] * 1000:7.0f} ms   "
                  f"tweak median {results[name][1] * 1000:6.0f} ms (max {results[name][2] * 1000:.0f} ms, "
                  f"n={len(tw)})", flush=True)
        browser.close()
    (l1, t1, _), (l0, t0, _) = results["cnnviz"], results["reference"]
    print(f"ratio cnnviz/reference: first page {l1 / l0:.2f}, tweak {t1 / t0:.2f}")
    print(f"targets: tweak <= 300 ms: {'met' if t1 <= 0.3 else 'MISSED'}; "
          f"first page <= 3 s: {'met' if l1 <= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
