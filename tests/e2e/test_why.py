"""Why?, in a real browser: a click on the lab's picture covers a square there and the answer changes;
screenshots of step 8 and the three pages that ask why, at 1920x1080."""

from __future__ import annotations

import re

import numpy as np

from cnnviz import explain as E
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import forward, load_model
from cnnviz.samples import sample_path
from cnnviz.ui.state import DEFAULT_SAMPLE
from tests.e2e.helpers import assert_no_exception, check_a11y, external_requests, screenshot, wait_idle

TIMEOUT = 90000  # ms; a loaded two-core machine draws the filters page in seconds, not milliseconds
PRESENTATION_JS = "() => [...document.querySelectorAll('style')].some(s => s.textContent.includes('1.35rem'))"
CLICKABLE = ".st-key-lab_click iframe"  # the clickable picture's frame, found by its widget key


def slider(page, label: str) -> str:
    """The value of the slider labelled `label` (its range input, as a keyboard or screen reader sees it)."""
    return page.locator(f'input[type="range"][aria-label="{label}"]').input_value()


def square_that_fools_it():
    """Where a square of the lab's default side changes the default picture's answer most -> (row, col from 0,
    side, the new answer's name), from the same functions the page calls."""
    model = load_model()
    small = fit_to_input(load_image(sample_path(DEFAULT_SAMPLE)), model.input_size)
    h, w = small.shape[:2]
    side = max(1, h // 4)  # the lab's starting side
    target = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
    places = [(r, c) for r in range(h) for c in range(w)]
    p = forward(model, model.normalize(E.changed_pictures(model, small, [E.Change(square=(r, c, side))
                                                                         for r, c in places], target)))
    fooled = np.flatnonzero(np.argmax(p, axis=1) != target)
    assert fooled.size, "no square of this side changes the default picture's answer"
    best = fooled[np.argmin(p[fooled, target])]
    return places[best], (h, w), side, model.classes[int(np.argmax(p[best]))]


def test_a_click_on_the_lab_picture_covers_a_square_and_changes_the_answer(page, app_server):
    (r, c), (h, w), side, name = square_that_fools_it()
    page.goto("/lab")
    page.get_by_role("heading", name="What fools it").wait_for(timeout=TIMEOUT)
    page.get_by_text(re.compile("^It still says")).wait_for(timeout=TIMEOUT)
    wait_idle(page, TIMEOUT)
    assert slider(page, "Side") == str(side)
    picture = page.frame_locator(CLICKABLE).locator("img")
    picture.wait_for(timeout=TIMEOUT)
    box = picture.bounding_box()
    page.mouse.click(box["x"] + (c + 0.5) * box["width"] / w, box["y"] + (r + 0.5) * box["height"] / h)
    said = page.get_by_text(re.compile("^It now says"))
    said.wait_for(timeout=TIMEOUT)
    wait_idle(page, TIMEOUT)
    assert f"It now says {name}" in said.inner_text()
    assert slider(page, "Row") == str(r + 1)
    assert slider(page, "Column") == str(c + 1)
    assert_no_exception(page)
    check_a11y(page, "why-lab-square-clicked")
    screenshot(page, "why-lab-square-clicked")
    assert page.errors == []
    assert external_requests(page.requests, app_server) == []


VIEWS = [  # (address, what shows that it has been drawn, screenshot name)
    ("/?step=8", "This spot adds", "why-step8"),
    ("/filters", "Map 16:", "why-filters"),
    ("/lab", "The smallest invisible nudge", "why-lab"),
    ("/compare", "A minus B, class by class", "why-compare"),
]


def test_screenshots_of_the_four_views_at_1920x1080(browser, app_server):
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, base_url=app_server)
    page = context.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    context.on("request", lambda r: requests.append(r.url))
    try:
        for address, drawn, name in VIEWS:
            page.goto(address)
            page.get_by_text(drawn).first.wait_for(timeout=TIMEOUT)
            page.locator('[data-testid="stMain"] [data-testid="stImage"] img').nth(1).wait_for(timeout=TIMEOUT)
            wait_idle(page, TIMEOUT)
            assert_no_exception(page)
            check_a11y(page, name)
            screenshot(page, name)
    finally:
        context.close()
    assert errors == []
    assert external_requests(requests, app_server) == []


def test_every_overlay_and_page_in_presentation_mode_passes_axe(page, app_server):
    page.goto("/?step=8")
    page.get_by_text("This spot adds").first.wait_for(timeout=TIMEOUT)
    wait_idle(page, TIMEOUT)
    page.locator('[data-testid="stSidebar"]').get_by_text("Presentation mode", exact=True).click()
    page.wait_for_function("() => document.querySelector('[data-testid=stSidebar] input[role=switch]').checked",
                           timeout=TIMEOUT)
    wait_idle(page, TIMEOUT)
    for label, words in (("Helpful maps (Grad-CAM)", "For each of the last"),
                         ("Sensitive pixels (saliency)", "For every pixel"),
                         ("Cover up squares (occlusion)", "We hide one square")):
        page.get_by_text(label, exact=True).click()
        page.get_by_text(re.compile("^" + re.escape(words))).wait_for(timeout=TIMEOUT)
        wait_idle(page, TIMEOUT)
        assert_no_exception(page)
        check_a11y(page, f"why-step8-pres-{label.split('(')[1].rstrip(')').lower()}")
    for title, drawn in (("What fools it", "The smallest invisible nudge"), ("What each filter looks for", "Map 16:"),
                         ("Two pictures side by side", "A minus B, class by class")):
        page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
        page.get_by_role("heading", name=title).wait_for(timeout=TIMEOUT)
        page.get_by_text(drawn).first.wait_for(timeout=TIMEOUT)
        wait_idle(page, TIMEOUT)
        assert_no_exception(page)
        assert page.evaluate(PRESENTATION_JS)  # presentation mode's bigger text came along
        check_a11y(page, f"why-{title.split()[1]}-pres")
    screenshot(page, "why-compare-presentation")
    assert page.errors == []
    assert external_requests(page.requests, app_server) == []
