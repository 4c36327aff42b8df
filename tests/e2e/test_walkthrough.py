"""A newcomer's path in a real browser: walk all seven steps with Next, edit a filter, and see the
prediction change; no exception box, no request leaving the machine, no accessibility failure (axe-core),
a screenshot of every step."""

import re

from cnnviz.ui.state import STEPS
from tests.e2e.helpers import (
    assert_no_exception,
    check_a11y,
    edit_grid_cell,
    external_requests,
    screenshot,
    wait_idle,
)


def _header(page, k: int):
    page.get_by_role("heading", name=f"{k}. {STEPS[k - 1]}").wait_for(timeout=60000)
    wait_idle(page, timeout=60000)
    page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.wait_for(timeout=60000)


def _map_range(page) -> str:
    return page.get_by_text(re.compile("^Its numbers run from")).inner_text()


def test_walk_every_step_and_edit_a_filter(page, app_server):
    page.goto("/")
    _header(page, 1)
    for k in range(1, len(STEPS) + 1):
        assert_no_exception(page)
        assert page.get_by_text(re.compile(r"Prediction.*\(\d+%|Prediction.*<1%")).count() == 1
        assert page.locator('[data-testid="stImage"] img, iframe').count() >= 2, f"step {k} shows no pictures"
        screenshot(page, f"step{k}-{STEPS[k - 1].lower().replace(' ', '-')}")
        check_a11y(page, f"step{k}")
        if k < len(STEPS):
            page.get_by_role("button", name="Next", exact=True).click()
            _header(page, k + 1)
            assert f"step={k + 1}" in page.url

    # Back to the convolution step and write a filter by hand.
    for k in range(len(STEPS), 2, -1):
        page.get_by_role("button", name="Previous", exact=True).click()
        _header(page, k - 1)
    before = _map_range(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    edit_grid_cell(page, grid, 1, 1, 40)
    page.wait_for_function(
        "old => [...document.querySelectorAll('p, span, div')].some(e => e.children.length === 0 && "
        "e.innerText.startsWith('Its numbers run from') && e.innerText !== old)",
        arg=before, timeout=30000)
    wait_idle(page)
    assert _map_range(page) != before
    page.get_by_role("button", name=re.compile("Put this filter into the network")).click()
    page.get_by_text("Prediction (with your edits)").wait_for(timeout=30000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, "step2-filter-edited")
    check_a11y(page, "step2-filter-edited")

    assert page.errors == []
    assert external_requests(page.requests, app_server) == []
