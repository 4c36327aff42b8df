"""Accessibility failures that Streamlit itself causes and the app cannot fix, allowed by rule and element.

`check_a11y` (helpers.py) fails a browser test on every critical or serious axe-core violation except
those listed here. Each entry names the axe rule id, a CSS selector of the Streamlit element it is
allowed on (matched with Element.matches, so it never covers the app's own elements), and the reason.
Minor and moderate findings never fail a test; they are saved with the rest (artifacts/a11y/) and
listed in README.md, "Accessibility", with the Streamlit issues they belong to.

Keep it short: an entry here is a barrier some student meets. Remove an entry when Streamlit fixes it.
"""

from __future__ import annotations

from typing import NamedTuple


class Allowed(NamedTuple):
    rule: str  # axe-core rule id
    selector: str  # what the node must match (the last element of axe's target)
    reason: str


ALLOWED: tuple[Allowed, ...] = (
    # Measured on every state the browser tests visit (every walkthrough step in both modes, both
    # training pages before and after training, the model-file page, the hostile uploads, the keyboard
    # walk): no critical or serious violation is left that Streamlit causes. What remains is minor:
    # the file uploader's drop zone (<section role="presentation" tabindex="-1" aria-label=...>,
    # presentation-role-conflict), which does not fail a test and needs no entry.
)
