"""Watch it learn, in a real browser: training on the generated pictures starts, the progress bar, the
curves and the first-layer filters move while the page stays live, Stop works, and the trained
network is walked through every step; screenshots along the way (artifacts/screenshots/learn-*) and an
axe-core check of every state (artifacts/a11y/)."""

import re

from cnnviz.ui.state import STEPS
from tests.e2e.helpers import assert_no_exception, check_a11y, external_requests, screenshot, wait_idle

PROGRESS = '[data-testid="stProgress"]'
IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'


def _step(page) -> int:
    m = re.search(r"Step (\d+) of (\d+)", page.locator(PROGRESS).inner_text())
    return int(m.group(1)) if m else -1


def _wait_for_step(page, at_least: int, timeout: float = 90000) -> None:
    page.wait_for_function(
        """([sel, n]) => { const el = document.querySelector(sel);
             const m = el && el.innerText.match(/Step (\\d+) of/); return m && +m[1] >= n; }""",
        arg=[PROGRESS, at_least], timeout=timeout)


def _sources(page) -> list[str]:
    return page.locator(IMAGES).evaluate_all("els => els.map(e => e.getAttribute('src'))")


def _header(page, k: int):
    page.get_by_role("heading", name=f"{k}. {STEPS[k - 1]}").wait_for(timeout=60000)
    wait_idle(page, timeout=60000)


def _pictures_loaded(page) -> None:
    """Wait until every picture on the page has loaded (before a screenshot)."""
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=30000)


def test_watch_it_learn_stop_and_walk_through(page, app_server):
    page.goto("/learn")
    page.get_by_role("heading", name="Watch it learn").wait_for(timeout=60000)
    wait_idle(page, timeout=60000)
    assert_no_exception(page)
    check_a11y(page, "learn-before")
    page.get_by_role("button", name="Start training").click()

    _wait_for_step(page, 20)
    assert page.get_by_role("button", name="Start training").is_disabled()  # one training at a time
    screenshot(page, "learn-start")
    early, step_early = _sources(page), _step(page)
    _wait_for_step(page, step_early + 40)
    screenshot(page, "learn-middle")
    later = _sources(page)
    # curves (loss, accuracy) and the current filters are redrawn; the starting filters stay put
    assert later[-4] != early[-4] and later[-3] != early[-3], "the curves did not move"
    assert later[-1] != early[-1], "the filters did not change"
    assert later[-2] == early[-2]

    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("You stopped it.").wait_for(timeout=30000)
    wait_idle(page)
    assert_no_exception(page)
    stopped_at = _step(page)
    assert 0 < stopped_at < int(re.search(r"of (\d+)", page.locator(PROGRESS).inner_text()).group(1))
    assert page.get_by_text(re.compile(r"It gets \d+% of 500 test pictures right")).count() == 1
    # Stopped means stopped: the results are drawn once the job's thread has ended, at the step it
    # reached, and the live panel that redrew every second (with its Stop button) is gone.
    assert page.get_by_text(f"You stopped it. {stopped_at} steps in").count() == 1
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    screenshot(page, "learn-stopped")
    check_a11y(page, "learn-after")

    page.get_by_role("button", name="Walk through this network").click()
    _header(page, 1)
    assert "/learn" not in page.url  # the walkthrough is the default page, at /
    assert page.get_by_text("network: trained live on shapes and stripes").count() >= 1  # banner, sidebar
    for k in range(1, len(STEPS) + 1):
        assert_no_exception(page)
        _pictures_loaded(page)
        screenshot(page, f"learn-walk-step{k}")
        check_a11y(page, f"learn-walk-step{k}")
        if k < len(STEPS):
            page.get_by_role("button", name="Next", exact=True).click()
            _header(page, k + 1)
    assert page.errors == []
    assert external_requests(page.requests, app_server) == []


def test_teach_drawn_examples_train_and_walk_through(page, app_server):
    page.goto("/teach")
    page.get_by_role("heading", name="Teach your own classes").wait_for(timeout=60000)
    wait_idle(page, timeout=60000)
    check_a11y(page, "teach-before")
    page.get_by_role("button", name=re.compile("Try it with drawn examples")).click()
    page.get_by_text("12 pictures").nth(2).wait_for(timeout=30000)
    wait_idle(page)
    screenshot(page, "teach-pictures")
    check_a11y(page, "teach-pictures")
    # every "✕" has a name of its own for a screen reader (the page script gives it)
    page.get_by_role("button", name="Remove picture 3 from class 2 (circles)").wait_for(timeout=30000)
    assert page.get_by_role("button", name=re.compile("^Remove picture")).count() == 36
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Done.").wait_for(timeout=90000)
    wait_idle(page)
    assert_no_exception(page)
    assert page.get_by_text(re.compile(r"It gets \d+% of 6 test pictures right")).count() == 1
    assert page.get_by_text("The 6 pictures kept aside").count() == 1
    screenshot(page, "teach-trained")
    check_a11y(page, "teach-after")
    page.get_by_role("button", name="Walk through this network").click()
    _header(page, 1)
    assert page.get_by_text("network: your classes: stripes, circles, checkerboards").count() >= 1
    assert page.get_by_text(re.compile(r"Now showing: one of your pictures")).count() == 1
    _pictures_loaded(page)
    screenshot(page, "teach-walk-step1")
    check_a11y(page, "teach-walk-step1")
    assert page.errors == []
