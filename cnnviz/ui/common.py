"""Small drawing helpers shared by the step views."""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import streamlit as st
from PIL import Image, ImageOps

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
    show_png(render.png(img), caption)


def show_png(data: bytes, caption: str | None = None) -> None:
    """Like show, for PNG bytes made earlier (e.g. cached with st.cache_data, so a class draws them once)."""
    st.image(data, caption=caption, width="content", output_format="PNG")


def _data_url(img: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(render.png(img)).decode("ascii")


def picture_row(items, width: int, footer: str = "", box_id: str = "") -> None:
    """Small pictures side by side, each `width` pixels wide with its caption and an optional note
    under it, and a line of text below them, as ONE element whose PNGs are written into the page
    (data: URLs), not files the browser fetches afterwards.

    `items` are (uint8 (H, W, 3) array, caption, note or None). The PNGs keep their own size (a 32x32
    map is a few hundred bytes) and the browser enlarges them with `image-rendering: pixelated`, so
    every cell stays a sharp square. Captions and notes are escaped here; `footer` is HTML that the
    caller has built with html.escape around anything that came from a file or a user. `box_id`
    names the element (an HTML id) for the browser tests.
    For what a live tweak redraws: one element is one message and one re-render in the browser.
    """
    figures = []
    for rgb, caption, note in items:
        img = Image.fromarray(np.ascontiguousarray(rgb))
        height = round(width * img.height / img.width)
        extra = f'<div style="font-size:0.875rem">{html.escape(note)}</div>' if note else ""
        figures.append(
            f'<figure style="margin:0;flex:0 1 {width}px;min-width:0">'
            f'<img src="{_data_url(img)}" alt="{html.escape(caption)}" width="{width}" height="{height}" '
            f'style="width:{width}px;max-width:100%;height:auto;aspect-ratio:{img.width}/{img.height};'
            f'object-fit:fill;image-rendering:pixelated;display:block;margin:0">'
            f'<figcaption style="font-size:0.875rem;opacity:0.7">{html.escape(caption)}</figcaption>{extra}</figure>')
    ident = f' id="{html.escape(box_id)}"' if box_id else ""
    st.markdown(f'<div{ident}><div style="display:flex;gap:1.5rem;align-items:flex-start;flex-wrap:wrap">'
                f'{"".join(figures)}</div><p style="margin-top:0.75rem">{footer}</p></div>', unsafe_allow_html=True)


def signed_map(a: np.ndarray, width: int, vmax: float | None = None) -> Image.Image:
    """A signed map (H, W) as a crisp diverging-colour picture `width` pixels wide."""
    return render.upscale(render.diverging(a, vmax), width)


def fmt_prob(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|$~:])")


def plain(text, limit: int = 80) -> str:
    """Any value from a file or a user -> text that st.markdown shows as itself: shortened to `limit`
    characters, with every markdown sign escaped, so it can never become a link, a picture, HTML or maths."""
    s = " ".join(str(text).split())
    s = s if len(s) <= limit else s[:limit - 1] + "…"
    return _MARKDOWN_SPECIALS.sub(r"\\\1", s)


def preview(picture: np.ndarray, width: int, height: int) -> Image.Image:
    """uint8 (H, W, 3) -> a PIL picture that fits in width x height, keeping its shape, on grey side bars
    when it is more than twice as tall as wide. Streamlit stretches an image to its caption's width, so
    without the bars a 1x5000 strip would be drawn a hundred pixels wide and tens of thousands tall."""
    h, w = picture.shape[:2]
    up = min(width / w, height / h) >= 1
    resample = Image.Resampling.NEAREST if up else Image.Resampling.BOX  # sharp pixels up, fair average down
    img = ImageOps.contain(Image.fromarray(np.ascontiguousarray(picture)), (width, height), resample)
    if min(img.size) == 0:  # a strip so thin that it rounds to no pixels across: keep one
        size = (max(1, img.width), max(1, img.height))
        img = Image.fromarray(np.ascontiguousarray(picture)).resize(size, resample)
    if img.height <= 2 * img.width:
        return img
    canvas = Image.new("RGB", (-(-img.height // 2), img.height), (235, 235, 235))
    canvas.paste(img, ((canvas.width - img.width) // 2, 0))
    return canvas


# ---------------------------------------------------------------- positions on a grid


def clicked_cell(click, shape) -> tuple[int, int] | None:
    """A click from streamlit_image_coordinates on a picture of a grid -> the cell under it, or None.

    click: {"x", "y", "width", "height", ...} in the picture's displayed pixels (width and height may be
    missing: then x and y are taken as cells); shape: (rows, cols) of the grid (for a picture: its pixels).
    -> 0-based (row, col), always inside the grid.
    """
    if not click or "x" not in click or "y" not in click:
        return None
    rows, cols = shape
    i = int(click["y"] * rows / max(1, click.get("height") or rows))
    j = int(click["x"] * cols / max(1, click.get("width") or cols))
    return min(max(i, 0), rows - 1), min(max(j, 0), cols - 1)


def new_click(key: str) -> dict | None:
    """The click held by image widget `key` if this run has not handled it yet, else None.

    For clicks that move sliders: the sliders are then set once, and can be dragged away afterwards.
    """
    click = st.session_state.get(key)
    if not click or click == st.session_state.get(f"_{key}_handled"):
        return None
    st.session_state[f"_{key}_handled"] = dict(click)
    return click


def seeded_slider(container, label: str, lo: int, hi: int, start: int, key: str) -> int:
    """A slider from lo to hi whose value lives in st.session_state[key], set to `start` when missing
    or out of range (a new map may be smaller). Never given a value as well: Streamlit warns about
    both, and a click elsewhere could not move it. With only one value there is nothing to choose: lo."""
    if hi <= lo:
        return lo
    if not lo <= st.session_state.get(key, lo - 1) <= hi:
        st.session_state[key] = start
    return int(container.slider(label, lo, hi, key=key))
