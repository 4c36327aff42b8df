"""How fast the app answers in a real browser (Debian's Chromium through Playwright).

Measures, in one run:
- first page: a fresh browser context opens the app until the prediction is on screen and the
  script is idle (median of --loads);
- filter tweak: typing one new weight into the playground's filter grid until the new feature map
  and prediction are on screen (median of --tweaks);
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

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, IDLE_SELECTOR, edit_grid_cell, serve  # noqa: E402

REFERENCE_APP = '''
import numpy as np
import streamlit as st

@st.fragment
def playground():
    k = st.data_editor(np.zeros((3, 3)), key="ref_grid", hide_index=True)
    st.markdown(f"the network would say: {float(np.asarray(k, dtype=float).sum()):.1f}")

st.header("reference")
st.info("Prediction: reference")
playground()
'''
# The newest image inside the playground's fragment changes when a tweak has been drawn.
LAST_SRC = """() => { const ims = [...document.querySelectorAll('[data-testid="stImage"] img')];
                      return ims.length ? ims[ims.length - 1].src : ''; }"""
ANSWER = """() => { const p = [...document.querySelectorAll('p')].find(p => p.innerText.includes('would say'));
                    return p ? p.innerText : ''; }"""


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
    dt = time.perf_counter() - t0
    ctx.close()
    return dt


def tweaks(browser, url: str, n: int) -> list[float]:
    """Seconds from pressing Enter on a new weight to the updated map/answer, n times."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = ctx.new_page()
    page.goto(url)
    page.get_by_text("would say").first.wait_for(timeout=60000)
    page.wait_for_selector(IDLE_SELECTOR, timeout=60000)
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    times = []
    for k in range(n + 1):  # the first edit warms up and is not counted
        before = page.evaluate(ANSWER), page.evaluate(LAST_SRC)
        value = (k % 7 + 1) * (1 if k % 2 else -1) * 3
        t0 = time.perf_counter()
        edit_grid_cell(page, grid, 1, 1, value)
        try:
            page.wait_for_function(f"old => ({ANSWER})() !== old[0] || ({LAST_SRC})() !== old[1]",
                                   arg=list(before), timeout=30000, polling="raf")
        except Exception:
            page.screenshot(path="/tmp/app_latency_timeout.png", full_page=True)
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
        for name, app, path in (("cnnviz", "app.py", "/?step=2"), ("reference", str(ref_app), "/")):
            logs = Path(tmp) / name
            logs.mkdir()
            with serve(app, _free_port(), logs) as base:
                first_page(browser, base + path)  # the server's first run imports and loads everything
                loads = [first_page(browser, base + path) for _ in range(a.loads)]
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
