"""The walkthrough's steps, their views (one per stage kind) and the step indicator."""

from __future__ import annotations

from cnnviz.ui import activation, conv, dense, overview, pixels, pool, softmax
from cnnviz.ui.state import STEPS

KINDS = ("input", "conv", "relu", "maxpool", "overview", "dense", "softmax")

VIEWS = {
    "input": pixels.render_input,
    "conv": conv.render_conv,
    "relu": activation.render_relu,
    "maxpool": pool.render_maxpool,
    "overview": overview.render_overview,
    "dense": dense.render_dense,
    "softmax": softmax.render_softmax,
}


def indicator(step: int) -> str:
    """Numbered chips for every step, the current one filled (HTML)."""
    chips = []
    for k, name in enumerate(STEPS, start=1):
        on = k == step
        style = ("background:#d6604d;color:white;" if on else "background:#eef2f6;color:#333;")
        chips.append(f'<span style="{style}padding:3px 10px;border-radius:12px;margin:2px;'
                     f'display:inline-block;font-size:0.9rem">{k}. {name}</span>')
    return f'<div aria-label="Step {step} of {len(STEPS)}">{"".join(chips)}</div>'
