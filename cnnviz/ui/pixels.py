"""Step 1, Pixels: a picture is a grid of numbers, three per pixel."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz import render
from cnnviz.ui import describe as D
from cnnviz.ui.common import clickable, position, preview, show

ZOOM = 5  # the zoomed grid shows ZOOM x ZOOM pixels around the chosen one


def render_input(ctx) -> None:
    st.markdown(
        "A computer sees a picture as a grid of tiny squares called **pixels**. Each pixel is three "
        "numbers from 0 to 255: how much **red**, **green** and **blue** light it has. This network "
        f"looks at every picture shrunk to **{ctx.small.shape[1]}x{ctx.small.shape[0]} pixels**, so it "
        f"starts from {ctx.small.size:,} numbers. **Click any pixel** of the small picture (or move the Row and "
        "Column sliders) to read its numbers."
    )
    _pixel_explorer(ctx)
    st.subheader("Three colour planes")
    st.markdown("Split the picture into its red, green and blue numbers and you get three grids. "
            "The network's first filters look at all three at once.")
    cols = st.columns(3)
    w = ctx.px
    for c, (name, col) in enumerate(zip(("Red", "Green", "Blue"), cols)):
        with col:
            show(render.upscale(render.channel_plane(ctx.small, c), w), f"{name} plane", D.describe_plane(ctx.small, c))


@st.fragment
def _pixel_explorer(ctx) -> None:
    small = ctx.small
    h, w = small.shape[:2]
    i, j = position("px", (h, w), labels=("Pixel row", "Pixel column"))
    left, right = st.columns([1, 1])
    with left:
        st.markdown("**What you gave it**")
        big = min(ctx.px + 96, 420)
        st.image(preview(ctx.picture, big, big), width="content",
                 output_format="PNG" if max(ctx.picture.shape[:2]) < big else "JPEG",  # sharp pixels, light photos
                 alt=D.describe_picture(ctx.picture, f"The picture you gave it ({str(ctx.picture_name)[:60]})"))
    with right:
        st.markdown(f"**What the network sees: {w}x{h} pixels**")
        big = render.outline(render.upscale(small, ctx.px + 96), (i, j, i + 1, j + 1), (h, w), width=2)
        clickable(big, "px_click", D.describe_picture(small, "The picture as the network sees it", mark=(i, j)),
                  cursor="crosshair", png_compression_level=1)
    r, g, b = (int(v) for v in small[i, j])
    x = ctx.stages[0].output[:, i, j]
    st.markdown(
        f'<span style="display:inline-block;width:1.2em;height:1.2em;background:rgb({r},{g},{b});'
        f'border:1px solid #888;vertical-align:middle"></span> Pixel at row {i + 1}, column {j + 1}: '
        f"**rgb({r}, {g}, {b})**", unsafe_allow_html=True)
    if not ctx.presentation:
        st.caption(f"The network gets these after scaling to 0..1 and centring on the training pictures' "
                   f"average colour: {x[0]:+.2f}, {x[1]:+.2f}, {x[2]:+.2f}.")
    _zoom_grids(small, i, j)


def _zoom_grids(small: np.ndarray, i: int, j: int) -> None:
    """Three number grids (R, G, B) of the ZOOM x ZOOM pixels around (i, j), the chosen one outlined."""
    h, w = small.shape[:2]
    r0 = min(max(i - ZOOM // 2, 0), h - ZOOM)
    c0 = min(max(j - ZOOM // 2, 0), w - ZOOM)
    patch = small[r0:r0 + ZOOM, c0:c0 + ZOOM]
    cols = st.columns(3)
    for c, (name, col) in enumerate(zip(("Red", "Green", "Blue"), cols)):
        with col:
            values = patch[..., c].astype(float)
            grid = render.number_grid(values, render.channel_plane(patch, c), cell=46, fmt="{:.0f}",
                                      highlight=(i - r0, j - c0))
            what = f"{name} numbers of the {ZOOM} by {ZOOM} pixels from {D.where(r0, c0)}"
            show(grid, f"{name} numbers around it", D.describe_numbers(values, what, "{:.0f}", (i - r0, j - c0)),
                 D.numbers_table(values, f"{what} (rows and columns of this patch)", "{:.0f}"))
