"""Step 3, ReLU: what the activation does to the maps of the first convolution."""

from __future__ import annotations

import numpy as np
import streamlit as st
from numpy.lib.stride_tricks import sliding_window_view

from cnnviz import layers as L
from cnnviz import render
from cnnviz.model import Stage
from cnnviz.ui import describe as D
from cnnviz.ui.common import show, show_png, signed_map
from cnnviz.ui.state import Context


def _apply(kind: str):
    """The activation `kind` from the table of layer kinds, as a function of an array of any shape."""
    forward = L.KINDS[kind].forward
    return lambda x: forward(x, {}, {})[0]


FUNCTIONS = {kind: _apply(kind) for kind in L.ACTIVATIONS}
LABELS = {kind: L.KINDS[kind].title for kind in L.ACTIVATIONS}
EFFECT = {
    "relu": "**ReLU** keeps every positive number as it is and turns every negative number into exactly 0.",
    "tanh": "**tanh** squashes every number into the range -1 to 1. Negative numbers stay negative, "
            "so nothing is switched off; big numbers all end up close to 1 or -1.",
    "sigmoid": "**sigmoid** squashes every number into the range 0 to 1. Negative numbers end up "
               "below 0.5, but never exactly at 0, so nothing is switched off completely.",
}
PATCH = 5

INTRO = """
**ReLU** is the simplest rule in the whole network: *a positive number stays, a negative number becomes 0.*
It is applied to every number of every map that the convolution made.

Why bother? A convolution only multiplies and adds. Stack two of them and you get... another way of
multiplying and adding: two layers would be no smarter than one. ReLU puts a **bend** between the layers
(flat at 0, then a straight line up), and those bends are what let a deep network learn shapes that one
weighted sum never could.
"""


def activation_after(ctx: Context, kind: str = "conv") -> tuple[Stage, Stage]:
    """The first `kind` stage and the stage right after it, found by position: after an activation swap
    that stage is called "tanh1_1", not "relu1_1"."""
    i = next(k for k, s in enumerate(ctx.stages) if s.kind == kind)
    return ctx.stages[i], ctx.stages[i + 1]


def percent(part: int, whole: int) -> str:
    if part and part * 200 < whole:
        return "less than 1%"
    return f"{part / whole:.0%}"


def clipped_sentence(before: np.ndarray) -> str:
    """'412 of 1,024 numbers (40%) were negative' for any array."""
    n, neg = before.size, int(np.count_nonzero(before < 0))
    return f"{neg:,} of {n:,} numbers ({percent(neg, n)}) were negative"


def mixed_patch(a: np.ndarray, size: int = PATCH) -> tuple[int, int]:
    """Top-left corner of the size x size patch of `a` (H, W) with the most even mix of signs."""
    neg = sliding_window_view(a < 0, (size, size)).sum(axis=(-2, -1))  # (H-size+1, W-size+1)
    score = -np.abs(neg - size * size / 2)
    r, c = np.unravel_index(np.argmax(score), score.shape)
    return int(r), int(c)


def render_relu(ctx: Context) -> None:
    conv, act = activation_after(ctx)
    trained = ctx.trained_activation
    st.markdown(INTRO)
    if act.kind != trained:
        st.warning(f"Your network uses **{LABELS[act.kind]}** instead of {LABELS[trained]} right now (you switched "
                   f"it below). It was trained with {LABELS[trained]}, so the prediction above is no longer the one "
                   "it learned to give.", icon="🔀")
        if st.button(f"Go back to {LABELS[trained]}", key="relu_back_top", type="primary"):
            st.session_state["activation"] = trained
            st.rerun()
    elif trained != "relu":
        st.info(f"This network was trained with **{LABELS[trained]}** instead of ReLU, so below the maps go "
                f"through {LABELS[trained]}. {EFFECT[trained]}")
    _explorer(ctx, conv, act)


@st.fragment
def _explorer(ctx: Context, conv: Stage, act: Stage) -> None:
    x, y = conv.output, act.output  # (C, H, W) before and after the activation
    C = x.shape[0]
    label = f"Which map of {conv.name}? ({C} maps, one per filter)"
    if ctx.presentation:
        k = st.slider(label, 1, C, 1, key="relu_map") - 1
    else:
        pick, strip = st.columns([1, 1.3], vertical_alignment="center")
        k = pick.slider(label, 1, C, 1, key="relu_map") - 1
        with strip:
            _thumbnails(x, k)
    b, a = x[k], y[k] + 0.0  # + 0.0 turns -0.0 into 0.0 so it never prints as "-0.00"
    vmax = render.symmetric_limit(b)
    r, c = _patch_corner(ctx, b, k)
    box, grid = (r, c, r + PATCH, c + PATCH), b.shape

    st.subheader("Before and after, on the same colour scale")
    left, right, facts = st.columns([1, 1, 1.1])
    with left:
        show(render.outline(signed_map(b, ctx.px, vmax), box, grid), f"Before: {conv.name}, map {k + 1}",
             D.describe_map(b, f"Map {k + 1} of {conv.name}, before {LABELS[act.kind]}", box=box,
                            box_name="zoom patch"))
    with right:
        img = signed_map(a, ctx.px, vmax)
        dots = ""
        if act.kind == "relu":
            img = render.mark_cells(img, b < 0)
            dots = f"; a dot marks each of the {int(np.count_nonzero(b < 0)):,} cells that were negative and are now 0"
        show(render.outline(img, box, grid), f"After: {act.name}, map {k + 1}"
             + (" (dot = was negative, now 0)" if act.kind == "relu" else ""),
             D.describe_map(a, f"Map {k + 1} of {act.name}, after {LABELS[act.kind]}", box=box,
                            box_name="zoom patch") + dots)
    with facts:
        show(render.legend(vmax, width=ctx.px), alt=D.describe_legend(vmax))
        st.caption("Blue: negative. White: 0. Red: positive.")
        if act.kind == "relu":
            st.markdown(f"**This map:** {clipped_sentence(b)} and became 0.")
            st.markdown(f"**Whole layer ({C} maps):** {clipped_sentence(x)} and became 0.")
        else:
            st.markdown(f"**This map:** {clipped_sentence(b)}. {LABELS[act.kind]} kept them below "
                        f"{'0' if act.kind == 'tanh' else '0.5'} instead of making them 0.")

    _zoom(ctx, b[r:r + PATCH, c:c + PATCH], a[r:r + PATCH, c:c + PATCH], vmax, act.kind)
    _histograms(b, a, vmax, act.kind)
    st.divider()
    _compare(ctx, b, vmax, act.kind)


def _zoom(ctx: Context, patch_b: np.ndarray, patch_a: np.ndarray, vmax: float, kind: str) -> None:
    """The framed patch's numbers before and after, so -0.31 visibly becomes 0.00."""
    st.subheader(f"Zoom in: a {PATCH}x{PATCH} patch (yellow frame)")
    cell = 64 if ctx.presentation else 50
    g1, arrow, g2 = st.columns([1, 0.35, 1], vertical_alignment="center")
    with g1:
        show(render.number_grid(patch_b, render.diverging(patch_b, vmax), cell=cell), "Before",
             D.describe_numbers(patch_b, f"The patch before {LABELS[kind]}"),
             D.numbers_table(patch_b, f"The patch before {LABELS[kind]}"))
    arrow.markdown(f"<div style='text-align:center;font-size:1.6rem'>→ {LABELS[kind]} →</div>",
                   unsafe_allow_html=True)
    with g2:
        show(render.number_grid(patch_a, render.diverging(patch_a, vmax), cell=cell), "After",
             D.describe_numbers(patch_a, f"The patch after {LABELS[kind]}"),
             D.numbers_table(patch_a, f"The patch after {LABELS[kind]}"))


def _histograms(b: np.ndarray, a: np.ndarray, vmax: float, kind: str) -> None:
    """Counts of the map's values before and after, on one shared scale."""
    st.subheader("How many numbers of each size?")
    edges = np.linspace(-vmax, vmax, 32)  # an odd number of bins, so one bin sits right on 0
    top = int(max(np.histogram(b, edges)[0].max(), np.histogram(a, edges)[0].max()))
    width = 400  # fits half the page in both modes
    h1, h2 = st.columns(2)
    with h1:
        show(render.histogram(b, edges, vmax, width=width, top=top), f"Before {LABELS[kind]}",
             D.describe_histogram(b, edges, f"How many numbers of each size before {LABELS[kind]}"))
    with h2:
        show(render.histogram(a, edges, vmax, width=width, top=top),
             f"After {LABELS[kind]}" + (": every negative number piled up at 0" if kind == "relu" else ""),
             D.describe_histogram(a, edges, f"How many numbers of each size after {LABELS[kind]}"))


def _patch_corner(ctx: Context, b: np.ndarray, k: int) -> tuple[int, int]:
    """The zoom patch: the most mixed one of this map, or where the student moved it."""
    auto = mixed_patch(b)
    if ctx.presentation:
        return auto
    hi = b.shape[0] - PATCH + 1
    mark = (k, ctx.picture_name, float(b.sum()))  # a new map or picture puts the patch back on a mixed spot
    if st.session_state.get("_relu_patch_for") != mark or "relu_patch_row" not in st.session_state:
        st.session_state["_relu_patch_for"] = mark
        st.session_state["relu_patch_row"], st.session_state["relu_patch_col"] = auto[0] + 1, auto[1] + 1
    with st.expander("Move the zoom patch"):
        r = st.slider("Top row of the patch", 1, hi, key="relu_patch_row") - 1
        c = st.slider("Left column of the patch", 1, b.shape[1] - PATCH + 1, key="relu_patch_col") - 1
    return r, c


def _thumbnails(x: np.ndarray, k: int) -> None:
    """All maps of the layer, small, the chosen one framed."""
    show_png(_thumbnails_png(x, k), "Every map of this layer (each on its own colour scale); yours is framed.",
             D.describe_thumbnails(x, k, "this layer"))


@st.cache_data(show_spinner=False, max_entries=64)
def _thumbnails_png(x: np.ndarray, k: int) -> bytes:
    """The mosaic as PNG, keyed by content (x (C, H, W) is small enough to hash whole): drawn once for a class."""
    return render.png(render.thumbnails(x, k))


def _compare(ctx: Context, b: np.ndarray, vmax: float, current: str) -> None:
    st.subheader("Compare with tanh or sigmoid")
    choice = st.segmented_control("Send the same map through", list(FUNCTIONS), default="tanh", required=True,
                                  format_func=LABELS.get, key="relu_compare")
    out = FUNCTIONS[choice](b) + 0.0
    limit = vmax if choice == "relu" else 1.0
    xs = np.linspace(-vmax, vmax, 121)
    ylim = (-0.2 * vmax, vmax) if choice == "relu" else ((-1.2, 1.2) if choice == "tanh" else (-0.2, 1.2))
    curve, pic, words = st.columns([1, 1, 1.1])
    with curve:
        show(render.line_plot(xs, FUNCTIONS[choice](xs), ylim, width=ctx.px - 40, height=ctx.px * 2 // 3),
             f"The {LABELS[choice]} curve", D.describe_curve(LABELS[choice], xs, FUNCTIONS[choice](xs)))
    with pic:
        show(signed_map(out, ctx.px, limit), f"Map after {LABELS[choice]}",
             D.describe_map(out, f"The same map after {LABELS[choice]}"))
        show(render.legend(limit, width=ctx.px - 40), alt=D.describe_legend(limit))
    with words:
        st.markdown(EFFECT[choice])
        zeros = int(np.count_nonzero(out == 0))
        st.markdown(f"Here: numbers from {out.min():.2f} to {out.max():.2f}; "
                    f"{zeros:,} of {out.size:,} are exactly 0.")
        _switch_buttons(choice, current, ctx.trained_activation)


def _switch_buttons(choice: str, current: str, trained: str) -> None:
    """Put the chosen activation into this session's network (a full rerun: every stage changes)."""
    if choice != trained and choice != current:
        st.caption(f"The network learned its weights with {LABELS[trained]}, so with another function its "
                   "answers change, and usually get worse. Try it and watch the prediction at the top.")
        if st.button(f"Use {LABELS[choice]} in my network", key="relu_use_other"):
            st.session_state["activation"] = choice
            st.rerun()
    if current != trained:
        st.caption(f"Your network uses {LABELS[current]} everywhere now.")
        if st.button(f"Go back to {LABELS[trained]}", key="relu_back", type="primary"):
            st.session_state["activation"] = trained
            st.rerun()
