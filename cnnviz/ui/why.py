"""Step 8, Why?: where in the picture the network looked for its answer (three ways to ask), and, at any
spot, which of the last maps were lit there and what they added to the class's score."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz import explain as E
from cnnviz import layers as L
from cnnviz import render
from cnnviz.ui import pages
from cnnviz.ui.common import clickable, clicked_cell, fmt_prob, new_click, seeded_slider

INTRO = """
The network has answered. But **why** that answer? Three experiments on the same picture show where it
looked: hide parts of the picture, follow the last maps back, or test how sensitive the score is to each
pixel. Pick a class to ask about: the winner, or any other.
"""

# The clickable picture's width in both modes: its half of the page is about 430 pixels wide on a
# 1400-pixel screen, and a wider picture would make its frame scroll.
PICTURE_PX = 384
GLOW = (255, 215, 0)  # yellow: neither of the colours that mean a sign

METHODS = {
    "occlusion": "Cover up squares (occlusion)",
    "gradcam": "Helpful maps (Grad-CAM)",
    "saliency": "Sensitive pixels (saliency)",
}


def method_text(method: str, name: str, maps_shape) -> str:
    """Two plain sentences on what the overlay `method` shows, for class `name`."""
    C, H, W = maps_shape
    return {
        "occlusion": f"We hide one square of the picture at a time, filled with the training pictures' average "
                     f"colour, and measure how much the chance of **{name}** drops. Red places made the chance "
                     f"drop when hidden, so the network needed them; blue places made it rise.",
        "gradcam": f"For each of the last {C} maps we measure how much raising it would raise the score of "
                   f"**{name}**, then add the maps up, each weighted by that amount. Bright squares are where "
                   f"the helpful maps were lit; they are coarse because those maps are only {H}x{W}.",
        "saliency": f"For every pixel we measure how much the score of **{name}** would change if that pixel "
                    f"changed a tiny bit. Bright pixels are the ones the score is most sensitive to: sharp, "
                    f"but speckled.",
    }[method]


def figure(img: Image.Image, caption: str, alt: str | None = None) -> None:
    """A PIL image as PNG with a caption and the same words (or `alt`) as its text alternative."""
    st.image(render.png(img), caption=caption, width="content", output_format="PNG", alt=alt or caption)


# ---------------------------------------------------------------- the numbers


def occlusion_settings(size: int) -> tuple[int, int]:
    """(patch, stride) for a picture side: a quarter of it, moved by a quarter of that (8 and 2 for 32)."""
    patch = max(1, size // 4)
    return patch, max(1, patch // 4)


def heat(model, small: np.ndarray, target: int, method: str) -> np.ndarray:
    """The overlay's numbers for `method` on the fitted picture: (h, w) for occlusion (spread over the
    pixels) and saliency, (H', W') for Grad-CAM."""
    if method == "occlusion":
        patch, stride = occlusion_settings(min(small.shape[:2]))
        return E.occlusion_pixels(E.occlusion(model, small, target, patch, stride), small.shape[:2], patch, stride)
    if method == "gradcam":
        return E.gradcam(model, small, target)
    return E.saliency(model, small, target)


def _picture_key(small: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(small).tobytes() + repr(small.shape).encode(),
                           digest_size=16).hexdigest()


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_heat(model_key: str, picture_key: str, target: int, method: str, _model, _small) -> np.ndarray:
    """heat(), keyed by the weights' and the picture's content (never by the objects)."""
    return heat(_model, _small, target, method)


def spot_parts(maps: np.ndarray, vec: np.ndarray, dense, k: int, i: int, j: int) -> dict:
    """What spot (i, j) of the last maps (C, H, W) adds to class k's score, from the flattened list `vec`.

    -> values (C,): each map's number there, taken from the flattened list; products (C,): those numbers
    times class k's weights for them; part: their sum; parts (H, W): every spot's part; bias; total:
    all parts plus the bias, to be checked against the dense stage's output.
    """
    C, H, W = maps.shape
    w, b = dense.layer.params["weight"], dense.layer.params.get("bias")
    where = np.arange(C) * H * W + i * W + j  # flatten's C, H, W order
    values = vec[where]  # (C,)
    products = w[k, where].astype(np.float64) * values  # (C,)
    parts = (w[k].astype(np.float64) * vec).reshape(C, H, W).sum(axis=0)  # (H, W)
    bias = float(b[k]) if b is not None else 0.0
    return {"values": values, "products": products, "part": float(products.sum()), "parts": parts,
            "bias": bias, "total": float(parts.sum() + bias)}


# ---------------------------------------------------------------- pictures


def overlay(small: np.ndarray, values: np.ndarray, method: str, width: int) -> Image.Image:
    """The picture `width` pixels wide with `values` laid over it.

    Occlusion is signed: blended with red (hiding it hurt) and blue (hiding it helped). Grad-CAM and
    saliency are never negative: the picture dimmed where they are small and glowing yellow where large.
    """
    pic = np.asarray(render.upscale(small, width), np.float32)  # (H, W, 3)
    size = (pic.shape[1], pic.shape[0])
    if method == "occlusion":
        colours = render.upscale(render.diverging(values), width).resize(size, Image.Resampling.NEAREST)
        mixed = 0.5 * pic + 0.5 * np.asarray(colours, np.float32)
        return Image.fromarray(np.clip(np.round(mixed), 0, 255).astype(np.uint8))
    top = float(np.percentile(values, 99)) if method == "saliency" else float(values.max())
    t = np.clip(values / top, 0, 1) if top > 0 else np.zeros_like(values)
    t = np.sqrt(t) if method == "saliency" else t  # a few very large gradients would hide the rest
    light = Image.fromarray(np.round(t * 255).astype(np.uint8)).resize(size, Image.Resampling.NEAREST)
    t = np.asarray(light, np.float32)[..., None] / 255  # (H, W, 1)
    glow = pic * (0.25 + 0.75 * t) + 0.35 * t * np.array(GLOW, np.float32)
    return Image.fromarray(np.clip(np.round(glow), 0, 255).astype(np.uint8))


def mark_spot(img: Image.Image, cell, grid, field, picture_shape) -> Image.Image:
    """Frame the spot's square of the grid (orange) and, thinner, its receptive field (light yellow)."""
    top, left, bottom, right = field
    h, w = picture_shape
    img = render.outline(img, (max(top, 0), max(left, 0), min(bottom, h), min(right, w)), (h, w),
                         color=(255, 235, 140), width=2)
    i, j = cell
    return render.outline(img, (i, j, i + 1, j + 1), grid, color=(255, 150, 0), width=4)


# ---------------------------------------------------------------- the view


def _parts(ctx):
    """(maps stage, flatten stage, dense stage): what flows into the first dense layer."""
    d = next(i for i, s in enumerate(ctx.stages) if s.kind == "dense")
    return ctx.stages[d - 2], ctx.stages[d - 1], ctx.stages[d]


def render_why(ctx) -> None:
    st.markdown(INTRO)
    _where_it_looked(ctx)
    st.subheader("More ways to ask why")
    a, b, c = st.columns(3)
    a.page_link(pages.filters_page(), label="What each filter looks for", icon=":material/grid_view:")
    b.page_link(pages.lab_page(), label="What fools it", icon=":material/science:")
    c.page_link(pages.compare_page(), label="Two pictures side by side", icon=":material/compare:")


@st.fragment
def _where_it_looked(ctx) -> None:
    classes, p = ctx.model.classes, ctx.probabilities
    top = int(np.argmax(p))
    a, b = st.columns([1, 2])
    k = a.selectbox("Why this class?", range(len(classes)), index=top, key=f"why_class_{top}",
                    format_func=lambda c: f"{classes[c]} ({fmt_prob(p[c])})" + (" ← the answer" if c == top else ""))
    method = b.segmented_control("Show", list(METHODS), format_func=METHODS.get, key="why_method",
                                 default="occlusion", required=True)
    maps, vec, dense = _parts(ctx)
    st.markdown(method_text(method, classes[k], maps.output.shape))
    values = _cached_heat(E.model_key(ctx.model), _picture_key(ctx.small), k, method, ctx.model, ctx.small)

    C, H, W = maps.output.shape
    parts = spot_parts(maps.output, vec.output, dense, k, 0, 0)["parts"]
    start = np.unravel_index(int(np.argmax(parts)), parts.shape)  # the spot that adds most
    cell = clicked_cell(new_click("why_click"), (H, W))
    if cell is not None:
        st.session_state["why_row"], st.session_state["why_col"] = cell[0] + 1, cell[1] + 1
    left, right = st.columns([1, 1.15])
    with left:
        r1, r2 = st.columns(2)
        i = seeded_slider(r1, "Spot: row", 1, H, int(start[0]) + 1, "why_row") - 1
        j = seeded_slider(r2, "Spot: column", 1, W, int(start[1]) + 1, "why_col") - 1
        below = ctx.model.layers[:ctx.index(maps.name)]
        img = mark_spot(overlay(ctx.small, values, method, PICTURE_PX), (i, j), (H, W),
                        L.receptive_field(below, i, j), ctx.small.shape[:2])
        st.caption(f"{METHODS[method]} for {classes[k]}. Click a place to look at it closely (or use the "
                   "sliders): the orange square is the spot, the light frame all the pixels it saw.")
        clickable(img, key="why_click", alt=f"The picture with {METHODS[method]} for {classes[k]} laid over it; "
                  f"the spot at row {i + 1}, column {j + 1} of the {H}x{W} last maps is framed",
                  cursor="crosshair", png_compression_level=1, width="content")
        _legend(method, values)
    with right:
        _spot(ctx, maps, vec, dense, k, i, j)


def _legend(method: str, values: np.ndarray) -> None:
    if method == "occlusion":
        figure(render.legend(render.symmetric_limit(values)),
               "Drop in the chance when hidden: blue it rose, white no change, red it fell")
    else:
        st.caption("Dark: hardly matters. Glowing yellow: matters most (each picture on its own scale).")


def _spot(ctx, maps, vec, dense, k: int, i: int, j: int) -> None:
    """Which maps were lit at spot (i, j) and what they add to class k's score, checked against the trace."""
    name = ctx.model.classes[k]
    C, H, W = maps.output.shape
    a = spot_parts(maps.output, vec.output, dense, k, i, j)
    st.markdown(f"**At row {i + 1}, column {j + 1}** of the last maps (**{maps.name}**, {H}x{W}):")
    lit = int(np.sum(a["values"] > 0))
    order = np.argsort(-a["values"])[:8]
    width = 520 if ctx.presentation else 440
    figure(render.signed_bar_chart([f"map {c + 1}" for c in order], a["values"][order], width=width, bar_h=18,
                                   fmt="{:.2f}", label_w=80),
           f"{lit} of the {C} maps are lit here (above 0); the 8 brightest, with their numbers")
    order = np.argsort(-np.abs(a["products"]))[:8]
    order = order[np.argsort(-a["products"][order])]
    figure(render.signed_bar_chart([f"map {c + 1}" for c in order], a["products"][order], width=width,
                                   bar_h=18, fmt="{:+.3f}", label_w=80),
           f"What they add to the score of {name}: number × weight (the 8 largest). Red pushes up, blue down.")
    ok = np.isclose(a["total"], float(dense.output[k]), rtol=1e-4, atol=1e-4)
    verdict = ":green[✓ the score in the fully connected layer]" if ok else \
        f":red[✗ differs from the fully connected layer's {float(dense.output[k]):.3f}]"
    st.markdown(f"This spot adds **{a['part']:+.3f}** to the score of **{name}** (its {C} products added up). "
                f"All {H * W} spots together add {a['parts'].sum():+.3f}; with the bias ({a['bias']:+.3f}) that "
                f"makes **{a['total']:.3f}** {verdict}")
    parts = render.upscale(render.diverging(a["parts"]), 320 if ctx.presentation else 256)
    figure(render.outline(parts, (i, j, i + 1, j + 1), (H, W), color=(255, 150, 0), width=3),
           "Every spot's part of the score (orange: this one)",
           f"What every spot adds to the score of {name}: red pushes it up, blue down; orange frames this spot")
