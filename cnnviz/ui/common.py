"""Small drawing helpers shared by the step views."""

from __future__ import annotations

import base64
import functools
import html
import re

import numpy as np
import streamlit as st
from PIL import Image, ImageOps
from streamlit_image_coordinates import streamlit_image_coordinates

from cnnviz import render
from cnnviz.ui import describe

PRESENTATION_CSS = """
<style>
[data-testid="stMain"] p, [data-testid="stMain"] li { font-size: 1.35rem; line-height: 1.5; }
[data-testid="stMain"] h1 { font-size: 2.6rem; } [data-testid="stMain"] h2 { font-size: 2.1rem; }
[data-testid="stMain"] h3 { font-size: 1.7rem; }
</style>
"""


# ---------------------------------------------------------------- accessibility

# "sr-only": seen by screen readers, not on screen (the usual visually-hidden rule; !important, since
# Streamlit's own table and markdown rules are more specific). The page script's element takes no room.
A11Y_CSS = """
<style>
.sr-only { position: absolute !important; width: 1px !important; height: 1px !important; padding: 0 !important;
  margin: -1px !important; overflow: hidden !important; clip: rect(0, 0, 0, 0) !important;
  white-space: nowrap !important; border: 0 !important; }
.st-key-cnnviz_a11y { display: none; }
/* A keyboard focus that always shows: Streamlit 1.67 marks a focused page link only by the pale
   background it also uses for the current page, a toggle by a faint grey box, and its scrolling main
   area (a tab stop) not at all. */
[data-testid="stSidebarNavLink"]:focus-visible,
[data-testid="stCheckbox"] label:has(input:focus-visible),
[data-testid="stMain"]:focus-visible {
  outline: 2px solid #9f2936 !important; outline-offset: 2px; border-radius: 0.5rem; }
[data-testid="stMain"]:focus-visible { outline-offset: -3px; }
[data-testid="stElementToolbar"]:focus-within { opacity: 1 !important; }
</style>
"""

# Runs in the page itself (st.components.v2: no iframe), once per browser tab, and again on each rerun:
# - a polite live region says "Step 3 of 8: ReLU" when the step changes (not on the first page load);
# - focus that a step button drops (Next turns disabled on the last step, Previous on the first) goes
#   to the other step button, so a keyboard user is never sent back to the top of the page; only
#   while the keyboard is on those buttons (a pointer press anywhere ends it);
# - every clickable picture (`clickable`) gets its words as alt and frame title, and its frame leaves
#   the tab order (its sliders are the keyboard path);
# - buttons named in `names` (by key) get that accessible name: a row of "✕" buttons becomes
#   "Remove picture 3 from cats", "Remove picture 4 from cats", ... for a screen reader.
A11Y_JS = """
export default function (component) {
  const a11y = window.cnnvizA11y || (window.cnnvizA11y = setUp());
  a11y.update(component.data || {});
}

function setUp() {
  const NAV = { prev: ".st-key-nav_prev button", next: ".st-key-nav_next button" };
  const live = document.createElement("div");
  live.id = "cnnviz-live";
  live.className = "sr-only";
  live.setAttribute("role", "status");
  live.setAttribute("aria-live", "polite");
  document.body.appendChild(live);
  let said = null;
  let nav = null;
  let names = {};

  document.addEventListener("focusin", (e) => {
    const t = e.target;
    nav = t.closest && t.closest(NAV.prev) ? "prev" : t.closest && t.closest(NAV.next) ? "next" : null;
  });
  document.addEventListener("pointerdown", () => { nav = null; }, true);

  function rescue() {
    const a = document.activeElement;
    if (!nav || (a && a !== document.body && !a.disabled)) return;
    for (const n of nav === "next" ? ["next", "prev"] : ["prev", "next"]) {
      const b = document.querySelector(NAV[n]);
      if (b && !b.disabled) { b.focus(); return; }
    }
  }

  function label() {
    document.querySelectorAll("[data-alt-for]").forEach((d) => {
      const key = d.getAttribute("data-alt-for");
      const text = d.textContent.trim();
      const frame = document.querySelector(".st-key-" + CSS.escape(key) + " iframe");
      if (!frame || !text) return;
      if (frame.getAttribute("tabindex") !== "-1") frame.setAttribute("tabindex", "-1");
      const title = text.split(";")[0];
      if (frame.title !== title) frame.title = title;
      if (!frame.dataset.cnnvizLabelled) {
        frame.dataset.cnnvizLabelled = "1";
        frame.addEventListener("load", label);
      }
      try {
        const img = frame.contentDocument && frame.contentDocument.getElementById("image");
        if (img && img.alt !== text) img.alt = text;
      } catch (err) { /* not the same origin: nothing to label */ }
    });
  }

  function name() {
    for (const [key, text] of Object.entries(names)) {
      const b = document.querySelector(".st-key-" + CSS.escape(key) + " button");
      if (b && b.getAttribute("aria-label") !== text) b.setAttribute("aria-label", text);
    }
  }

  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; rescue(); label(); name(); });
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true,
                              attributeFilter: ["disabled"] });

  return {
    update(data) {
      if (data.announce && data.announce !== said) {
        if (said !== null) live.textContent = data.announce;
        said = data.announce;
      }
      names = data.names || {};
      rescue();
      label();
      name();
    },
  };
}
"""


@functools.cache
def _a11y_component():
    # Made on first use, inside a script run, not at import (outside a run Streamlit logs a warning).
    return st.components.v2.component("cnnviz_a11y", js=A11Y_JS, isolate_styles=False)


def page_style() -> None:
    """The sr-only style and the focus rings, for a page that has no need of the script (takes no room)."""
    st.html(A11Y_CSS)


def page_script(announce: str = "", names: dict | None = None) -> None:
    """The page's accessibility helpers: the sr-only style, and the script above. `announce` is what the
    live region says when it changes (the step's title); `names` maps button keys to the accessible names
    their short visible labels lack. Once per page run, from the page itself (not inside a fragment)."""
    page_style()
    _a11y_component()(data={"announce": announce, "names": names or {}}, key="cnnviz_a11y", height=0)


def show(img: Image.Image, caption: str | None = None, alt: str | None = None, table: str = "") -> None:
    """A PIL image at its own pixel size (shrunk only if its column is narrower), sent as PNG so nothing blurs.

    `alt` says what it shows for a screen reader (describe.describe_*; the caption when None); `table`
    is the HTML of the numbers a grid picture shows (describe.numbers_table), placed right after it.
    """
    show_png(render.png(img), caption, alt, table)


def show_png(data: bytes, caption: str | None = None, alt: str | None = None, table: str = "") -> None:
    """Like show, for PNG bytes made earlier (e.g. cached with st.cache_data, so a class draws them once)."""
    if not table:
        st.image(data, caption=caption, width="content", output_format="PNG", alt=alt or caption)
        return
    with st.container(gap=None):  # the table takes no room, so no gap for it either
        st.image(data, caption=caption, width="content", output_format="PNG", alt=alt or caption)
        st.markdown(table, unsafe_allow_html=True)


def clickable(img, key: str, alt: str, **kwargs):
    """streamlit_image_coordinates(img, key=key, **kwargs) with a text alternative; returns its click.

    The component draws its picture inside an iframe that has no alt text and is a tab stop with no
    visible focus. The words go into the page as a hidden element named after `key`; the page script
    (`page_script`) copies them into the picture's alt and the frame's title, and takes the frame out
    of the tab order: every clickable picture has sliders next to it, which are its keyboard path.
    """
    with st.container(gap=None):
        st.markdown(f'<p hidden data-alt-for="{html.escape(key)}">{html.escape(alt)}</p>', unsafe_allow_html=True)
        return streamlit_image_coordinates(img, key=key, **kwargs)


def _data_url(img: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(render.png(img)).decode("ascii")


def picture_row(items, width: int, footer: str = "", box_id: str = "") -> None:
    """Small pictures side by side, each `width` pixels wide with its caption and an optional note
    under it, and a line of text below them, as ONE element whose PNGs are written into the page
    (data: URLs), not files the browser fetches afterwards.

    `items` are (uint8 (H, W, 3) array, caption, note or None[, description]). The PNGs keep their own
    size (a 32x32 map is a few hundred bytes) and the browser enlarges them with `image-rendering:
    pixelated`, so every cell stays a sharp square. Each picture's alt is its caption; the description
    (describe.describe_*), if given, follows in the figure's caption for screen readers only.
    Captions, notes and descriptions are escaped here; `footer` is HTML that the caller has built with
    html.escape around anything that came from a file or a user. `box_id` names the element (an HTML
    id) for the browser tests.
    For what a live tweak redraws: one element is one message and one re-render in the browser.
    """
    figures = []
    for rgb, caption, note, *more in items:
        img = Image.fromarray(np.ascontiguousarray(rgb))
        height = round(width * img.height / img.width)
        extra = f'<div style="font-size:0.875rem">{html.escape(note)}</div>' if note else ""
        words = f'<span class="{describe.SR_ONLY}">: {html.escape(more[0])}</span>' if more and more[0] else ""
        figures.append(
            f'<figure style="margin:0;flex:0 1 {width}px;min-width:0">'
            f'<img src="{_data_url(img)}" alt="{html.escape(caption)}" width="{width}" height="{height}" '
            f'style="width:{width}px;max-width:100%;height:auto;aspect-ratio:{img.width}/{img.height};'
            f'object-fit:fill;image-rendering:pixelated;display:block;margin:0">'
            f'<figcaption style="font-size:0.875rem;opacity:0.7">{html.escape(caption)}{words}</figcaption>'
            f'{extra}</figure>')
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


def position(key: str, shape, labels=("Row", "Column")) -> tuple[int, int]:
    """0-based (row, col) on a grid of `shape` (rows, cols), from two sliders side by side that count from 1
    (keys `{key}_row`, `{key}_col`; they start in the middle). A new click on the picture `{key}_click`
    moves them. The sliders are the keyboard path to every cell, in every mode."""
    h, w = shape
    cell = clicked_cell(new_click(f"{key}_click"), shape)
    if cell is not None:
        st.session_state[f"{key}_row"], st.session_state[f"{key}_col"] = cell[0] + 1, cell[1] + 1
    a, b = st.columns(2)
    i = seeded_slider(a, labels[0], 1, h, h // 2 + 1, f"{key}_row") - 1
    j = seeded_slider(b, labels[1], 1, w, w // 2 + 1, f"{key}_col") - 1
    return i, j


def seeded_slider(container, label: str, lo: int, hi: int, start: int, key: str) -> int:
    """A slider from lo to hi whose value lives in st.session_state[key], set to `start` when missing
    or out of range (a new map may be smaller). Never given a value as well: Streamlit warns about
    both, and a click elsewhere could not move it. With only one value there is nothing to choose: lo."""
    if hi <= lo:
        return lo
    if not lo <= st.session_state.get(key, lo - 1) <= hi:
        st.session_state[key] = start
    return int(container.slider(label, lo, hi, key=key))
