"""Keyboard only, in a real browser: a student who cannot use a mouse walks every step with Tab, Enter,
Space and the arrow keys, picks a pixel, writes a number into the filter playground, puts the filter into
the network and moves the pooling window; presentation mode the same way. No mouse event and no
programmatic focus: only key presses. After every step change the focus is on a visible step button
(Previous once Next is disabled on the last step) and the live region says the new step's title; every
state passes axe-core."""

import re

from cnnviz.ui.state import STEPS
from tests.e2e.helpers import (
    assert_no_exception,
    check_a11y,
    screenshot,
    wait_idle,
)

TIMEOUT = 60000  # ms; the machine is shared
TAB_LIMIT = 200  # Tab presses before giving up: far more than any page here has stops

# What has the keyboard focus: its tag, role, accessible-ish name and the Streamlit key of its element.
ACTIVE_JS = """() => {
  const a = document.activeElement;
  const box = a && a.closest('[class*="st-key-"]');
  return {tag: a ? a.tagName : '', role: a ? a.getAttribute('role') || '' : '',
          name: a ? (a.getAttribute('aria-label') || a.innerText || '').trim().slice(0, 80) : '',
          key: box ? [...box.classList].find(c => c.startsWith('st-key-')).slice(7) : '',
          disabled: !!(a && a.disabled)};
}"""

# A focus indicator: an outline or a box shadow on the focused element or one of its three nearest
# ancestors (Streamlit draws some rings on a wrapper), or the grid's own selection ring (a canvas).
FOCUS_SHOWN_JS = """() => {
  const a = document.activeElement;
  if (!a || a === document.body) return false;
  if (a.tagName === 'CANVAS') return true;
  let e = a;
  for (let k = 0; k < 4 && e; k++, e = e.parentElement) {
    const cs = getComputedStyle(e);
    if ((cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none') return true;
  }
  return false;
}"""


def _active(page) -> dict:
    return page.evaluate(ACTIVE_JS)


def _tab_to(page, want, backwards: bool = False) -> dict:
    """Press Tab (Shift+Tab if `backwards`) until the focused element satisfies want(active); return it.
    Fails if it takes more than TAB_LIMIT presses or the focus does not show."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        active = _active(page)
        if want(active):
            assert page.evaluate(FOCUS_SHOWN_JS), f"the keyboard focus does not show on {active}"
            return active
    raise AssertionError(f"{TAB_LIMIT} presses of Tab never reached the control")


def _key(name: str):
    return lambda a: a["key"] == name


def _step(page, k: int, presentation: bool = False) -> None:
    """Wait for step k, idle; the live region must have said its title; check it with axe-core."""
    page.get_by_role("heading", name=f"{k}. {STEPS[k - 1]}").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    assert_no_exception(page)
    check_a11y(page, f"step{k}{'-pres' if presentation else ''}")


def _said(page, k: int) -> None:
    page.wait_for_function("t => (document.getElementById('cnnviz-live') || {}).textContent === t",
                           arg=f"Step {k} of {len(STEPS)}: {STEPS[k - 1]}", timeout=TIMEOUT)


def _next(page, k: int, presentation: bool = False) -> None:
    """From step k - 1, with the focus on Next: Enter, then step k is shown and said, the focus stays put."""
    assert _active(page)["key"] == "nav_next"
    page.keyboard.press("Enter")
    _step(page, k, presentation)
    _said(page, k)
    active = _active(page)
    if k < len(STEPS):
        assert active["key"] == "nav_next" and not active["disabled"], active
    else:  # Next is disabled on the last step: the focus moved to Previous, not to the top of the page
        page.wait_for_function("() => !!document.activeElement.closest('.st-key-nav_prev')", timeout=TIMEOUT)
    assert page.evaluate(FOCUS_SHOWN_JS)


def _text(page, pattern: str) -> str:
    return page.get_by_text(re.compile(pattern)).first.inner_text()


def _slide(page, key: str) -> int:
    """Tab to slider `key` and move it one place with an arrow key (right, or left at its end);
    returns its new value."""
    _tab_to(page, lambda a: a["key"] == key and a["tag"] == "INPUT")
    value, top = page.evaluate("() => [+document.activeElement.value, +document.activeElement.max]")
    page.keyboard.press("ArrowRight" if value < top else "ArrowLeft")
    return value + 1 if value < top else value - 1


def _window(page) -> tuple[int, int]:
    """The pooling window's place, from the sentence that checks it against the pooled map."""
    same = page.locator("p", has_text="Same number").first.inner_text()
    r, c = (int(v) for v in re.search(r"row (\d+), column (\d+)", same).groups())
    return r, c


def _pixel(page) -> str:
    """The sentence that names the chosen pixel and its colour numbers."""
    return _text(page, r"Pixel at row \d+, column \d+: rgb")


def _shows(page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)


def _back_to_next(page) -> None:
    _tab_to(page, _key("nav_next"), backwards=True)


def test_presentation_mode_by_keyboard_keeps_every_choice_on_the_keyboard(page, app_server):
    page.goto("/")
    page.get_by_role("heading", name=f"1. {STEPS[0]}").wait_for(timeout=TIMEOUT)
    wait_idle(page, timeout=TIMEOUT)
    _tab_to(page, lambda a: a["key"] == "presentation" and a["role"] == "switch")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('[data-testid=stSidebar] input[role=switch]').checked",
                           timeout=TIMEOUT)
    # presentation mode drops the step's small print: wait for that rerun, not just the switch
    page.get_by_text("The network gets these after scaling").wait_for(state="detached", timeout=TIMEOUT)
    _step(page, 1, presentation=True)
    row = int(re.search(r"row (\d+)", _pixel(page)).group(1))
    col = _slide(page, "px_col")  # the pixel's sliders stay in presentation mode
    _shows(page, f"Pixel at row {row}, column {col}: rgb")
    _back_to_next(page)
    for k in range(2, len(STEPS) + 1):
        _next(page, k, presentation=True)
        if STEPS[k - 1] == "Max pooling":  # the window's sliders stay too
            r, _ = _window(page)
            c = _slide(page, "pool_col")
            _shows(page, f"as the pooled map at row {r}, column {c}")
            screenshot(page, "keyboard-presentation-step4")
            _back_to_next(page)
    assert page.errors == []
