"""Small drawing helpers shared by the step views."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz import render

PRESENTATION_CSS = """
<style>
[data-testid="stMain"] p, [data-testid="stMain"] li { font-size: 1.35rem; line-height: 1.5; }
[data-testid="stMain"] h1 { font-size: 2.6rem; } [data-testid="stMain"] h2 { font-size: 2.1rem; }
[data-testid="stMain"] h3 { font-size: 1.7rem; }
</style>
"""


def show(img: Image.Image, caption: str | None = None) -> None:
    """A PIL image at its own pixel size (shrunk only if its column is narrower), sent as PNG so nothing blurs."""
    st.image(render.png(img), caption=caption, width="content", output_format="PNG")


def signed_map(a: np.ndarray, width: int, vmax: float | None = None) -> Image.Image:
    """A signed map (H, W) as a crisp diverging-colour picture `width` pixels wide."""
    return render.upscale(render.diverging(a, vmax), width)


def explain(text: str) -> None:
    """The step's short explanation, in plain words."""
    st.markdown(text)


def fmt_prob(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"
