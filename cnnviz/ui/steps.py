"""The walkthrough's steps, their views (one per stage kind) and the step indicator."""

from __future__ import annotations

from cnnviz.ui import activation, conv, dense, overview, pixels, pool, softmax, why
from cnnviz.ui.state import STEPS

KINDS = ("input", "conv", "relu", "maxpool", "overview", "dense", "softmax", "why")

VIEWS = {
    "input": pixels.render_input,
    "conv": conv.render_conv,
    "relu": activation.render_relu,
    "maxpool": pool.render_maxpool,
    "overview": overview.render_overview,
    "dense": dense.render_dense,
    "softmax": softmax.render_softmax,
    "why": why.render_why,
}


def indicator(step: int) -> str:
    """Numbered chips for every step, the current one filled and marked as the current step (HTML list).

    The filled chip is the maps' dark red (6.9:1 with white text; the lighter red was 3.7:1).
    """
    chips = []
    for k, name in enumerate(STEPS, start=1):
        on = k == step
        style = ("background:#b2182b;color:white;" if on else "background:#eef2f6;color:#333;")
        current = ' aria-current="step"' if on else ""
        chips.append(f'<li{current} style="{style}padding:3px 10px;border-radius:12px;margin:2px;'
                     f'display:inline-block;font-size:0.9rem">{k}. {name}</li>')
    return f'<ol aria-label="Steps" style="list-style:none;padding:0;margin:0">{"".join(chips)}</ol>'
