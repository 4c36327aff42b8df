"""Step 2, Convolution: every first-layer filter, its feature map, the arithmetic at any position,
and a playground where a student writes a filter and puts it into the network."""

from __future__ import annotations

import html
import time
from contextlib import nullcontext

import numpy as np
import streamlit as st

from cnnviz import layers as L
from cnnviz import render
from cnnviz.filters import KERNEL_LIMIT, PRESETS, clean_kernel
from cnnviz.model import forward
from cnnviz.ui import describe as D
from cnnviz.ui import state
from cnnviz.ui.common import clickable, picture_row, position, show, show_png

CHANNELS = ("Red", "Green", "Blue")
LAYER = "conv1_1"


def render_conv(ctx) -> None:
    stage = ctx.stage(LAYER)
    w = stage.layer.params["weight"]
    F, C, KH, KW = w.shape
    bias = " (plus a **bias**)" if stage.layer.params.get("bias") is not None else ""
    st.markdown(
        f"A **filter** is a small grid of numbers, here {KH}x{KW} for each of the {C} colours. It slides over the "
        f"picture; at every spot it multiplies the {C * KH * KW} numbers under it by its own numbers and "
        f"adds everything up{bias}. The results form a **feature map**: big positive numbers "
        f"(red) where the picture looks like the filter, negative (blue) where it looks like the opposite. "
        f"This layer has **{F} filters**, so it makes {F} maps."
    )
    _all_filters(stage)
    st.subheader("Watch one filter at work")
    _one_filter(ctx)
    st.subheader("Filter playground")
    _playground(ctx)




def bias_of(layer, f: int) -> float:
    """Filter f's bias; 0 for a layer without biases (a model file may leave them out)."""
    b = layer.params.get("bias")
    return 0.0 if b is None else float(b[f])


def _all_filters(stage) -> None:
    w, maps = stage.layer.params["weight"], stage.output
    show_png(_filters_png(w, maps),
             "Each filter (its colours show its numbers) next to the map it makes from this picture",
             D.describe_filters(w, maps, stage.name))
    vmax = render.symmetric_limit(maps)
    show(render.legend(vmax), "Map colours: blue negative, white zero, red positive", D.describe_legend(vmax))


@st.cache_data(show_spinner=False, max_entries=64)
def _filters_png(w: np.ndarray, maps: np.ndarray) -> bytes:
    """The filter/map mosaic as PNG, keyed by the arrays' content: every student on the same picture
    and network shares one drawing (w (F, 3, 3, 3) and maps (F, H, W) are small enough to hash whole)."""
    return render.png(render.filters_and_maps(w, maps))


def conv_at(x: np.ndarray, layer, f: int, i: int, j: int) -> tuple[np.ndarray, float]:
    """The window of x (C, H, W) that output (i, j) of filter f of conv `layer` reads, and that output.

    -> window (C, KH, KW) with zeros where it hangs over the edge (the layer's padding), and the value
    computed by layers.conv2d on that window alone.
    """
    w, b = layer.params["weight"], layer.params.get("bias")
    kh, kw, stride, padding = L.KINDS["conv"].geometry(layer.params, layer.options)
    window = L.window(x, i, j, kh, kw, stride, padding)  # (C, KH, KW)
    value = L.conv2d(window[None], w[f:f + 1], None if b is None else b[f:f + 1])[0, 0, 0, 0]
    return window, float(value)


@st.fragment
def _one_filter(ctx) -> None:
    stage = ctx.stage(LAYER)
    layer = stage.layer
    n = len(layer.params["weight"])
    f = st.selectbox("Filter", range(n), format_func=lambda k: f"filter {k + 1}", key="conv_filter")
    H, W = stage.output.shape[1:]
    i, j = position("conv", (H, W))
    x = ctx.stages[0].output
    h, w = ctx.small.shape[:2]
    vmax = render.symmetric_limit(stage.output[f])
    left, right = st.columns(2)
    pic_slot, map_slot = left.empty(), right.empty()
    value_slot = st.empty()

    def draw(i, j, upto=None):
        box = L.window_box(i, j, *L.KINDS["conv"].geometry(layer.params, layer.options))
        pic = render.outline(render.upscale(ctx.small, ctx.px + 64), box, (h, w))
        inside = (max(box[0], 0), max(box[1], 0), min(box[2], h), min(box[3], w))  # padding is not in the picture
        with pic_slot.container():
            show(pic, f"Input ({w}x{h}): the window the filter sees",
                 D.describe_picture(ctx.small, "The input picture", box=inside))
        m = stage.output[f] if upto is None else np.where(_revealed(upto, (H, W)), stage.output[f], 0)
        big = render.outline(render.upscale(render.diverging(m, vmax), ctx.px + 64), (i, j, i + 1, j + 1), (H, W))
        words = D.describe_map(m, f"Feature map of filter {f + 1} of {stage.name}", "{:.3f}", mark=(i, j))
        with map_slot.container():
            st.caption(f"Feature map of filter {f + 1}: click a cell or use the sliders to move the window")
            if upto is None:
                clickable(big, "conv_click", words, cursor="crosshair", png_compression_level=1)
            else:
                show(big, alt=f"{words} (filled in up to {D.where(*upto)})")
        value_slot.markdown(f"Value at row {i + 1}, column {j + 1}: **{stage.output[f, i, j]:.3f}**")

    if st.button("▶ Play: slide the window along this row", key="conv_play"):
        for jj in range(W):
            draw(i, jj, upto=(i, jj))
            time.sleep(0.09)  # an animation for the eye, not a wait for a result
    draw(i, j)
    _arithmetic(x, layer, f, i, j, float(stage.output[f, i, j]), ctx.presentation)


def _revealed(upto, shape) -> np.ndarray:
    """True for every cell computed so far when the window has reached `upto` (row by row)."""
    i, j = upto
    idx = np.arange(shape[0] * shape[1]).reshape(shape)
    return idx <= i * shape[1] + j


def _arithmetic(x, layer, f: int, i: int, j: int, expected: float, presentation: bool) -> None:
    """Write out window x kernel = products for each colour (one picture), their sums plus bias, and
    check the result against the map."""
    window, value = conv_at(x, layer, f, i, j)
    kernel, bias = layer.params["weight"][f], bias_of(layer, f)
    products = window * kernel
    st.markdown("**The arithmetic at this position** (the input numbers are the pixels scaled the way the "
                "network sees them; outside the picture counts as 0)")
    cell = 50 if presentation else 44
    rows = [render.equation([render.number_grid(window[c], render.diverging(window[c], 3.0), cell),
                             render.number_grid(kernel[c], render.diverging(kernel[c]), cell),
                             render.number_grid(products[c], render.diverging(products[c]), cell)],
                            ["×", "="], labels=[f"{name} window", f"{name} filter",
                                                f"products: sum {products[c].sum():+.3f}"])
            for c, name in enumerate(CHANNELS)]
    sums = ", ".join(f"{name.lower()} {products[c].sum():+.3f}" for c, name in enumerate(CHANNELS))
    alt = (f"For each colour, the {D.size(window.shape[1:])} window at {D.where(i, j)} times filter {f + 1}'s "
           f"numbers gives {window[0].size} products; their sums: {sums}. The numbers are in the tables that follow")
    tables = "".join(D.products_table(window[c], kernel[c], f"{name}: window × filter = product")
                     for c, name in enumerate(CHANNELS))
    show(render.stack(rows, pad=12), alt=alt, table=tables)
    parts = " + ".join(f"({products[c].sum():+.3f})" for c in range(len(CHANNELS)))
    ok = abs(value - expected) <= 1e-4 * max(1.0, abs(expected))
    verdict = ":green[✓ the value in the feature map]" if ok else f":red[✗ differs from the map's {expected:.3f}]"
    bias_text = f"bias ({bias:+.3f})" if layer.params.get("bias") is not None else "no bias (this network has none)"
    st.markdown(f"{parts} + {bias_text} = **{value:.3f}** {verdict}")


# ---------------------------------------------------------------- playground


def _editor_tables(version: int, start: np.ndarray, separate: bool) -> tuple[np.ndarray, list[str]]:
    """The editable grids -> the cleaned (3, 3, 3) filter and notes on fixed cells.

    One 3x3 grid used for all three colours (its caption is written outside the fragment, so an edit
    does not resend it), or (separate) a captioned grid each for red, green and blue.
    """
    if separate:
        slots = st.columns(3)
        names, starts, keys = CHANNELS, start, [f"pg_{c[0]}_{version}" for c in CHANNELS]
    else:
        slots = [nullcontext()]
        names, starts, keys = (None,), start[:1], [f"pg_all_{version}"]
    kernel, notes = np.zeros((3, 3, 3), np.float32), []
    for c, (name, slot, values, key) in enumerate(zip(names, slots, starts, keys)):
        with slot:
            if separate:
                st.caption(f"{name} numbers")
            edited = _grid(values.astype(np.float64), key)
            if edited is None:  # an edit that does not fit a 3x3 grid: start all grids afresh
                st.session_state["pg_version"] = version + 1
                st.session_state["pg_grid_reset"] = True
                st.rerun()
            cleaned, why = clean_kernel(edited)
            if separate:
                kernel[c] = cleaned
            else:
                kernel[:] = cleaned
            notes += [f"{name}: {n}" if separate else n for n in why]
    if st.session_state.pop("pg_grid_reset", False):
        notes.append("An edit could not be read as a 3x3 grid of numbers, so the grids started again.")
    return kernel, notes


def _grid(values: np.ndarray, key: str) -> np.ndarray | None:
    """One editable 3x3 grid -> what it holds now, (3, 3) object; None when the browser's edit state
    cannot be applied to it (rows or columns that do not exist: never sent by a normal browser)."""
    try:
        edited = st.data_editor(values, key=key, hide_index=True, width="stretch")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    edited = np.asarray(edited, dtype=object)
    return edited if edited.shape == (3, 3) else None


def _start_kernel(ctx, choice: str, slot: int) -> tuple[np.ndarray, float]:
    if choice in PRESETS:
        return np.repeat(PRESETS[choice][None], 3, axis=0), 0.0
    layer = ctx.stage(LAYER).layer
    return np.array(layer.params["weight"][slot]), bias_of(layer, slot)


def _playground(ctx) -> None:
    """The choices (which network filter, where to start, one grid or three) and the buttons rerun the
    whole page; only the grids and what they drive (_live_filter) rerun on every edit, so a tweak sends
    a handful of elements to the browser."""
    st.markdown("Pick a ready-made filter or type your own numbers. The map updates as you type. Then put "
            "your filter into the network in place of one of its own and watch the later steps and the "
            "prediction change.")
    layer = ctx.stage(LAYER).layer
    n = layer.params["weight"].shape[0]
    a, b = st.columns(2)
    slot = a.selectbox("Network filter to replace", range(n), format_func=lambda k: f"filter {k + 1}",
                       key="pg_slot")
    choice = b.selectbox("Start from", [*PRESETS, "The network's own filter"], key="pg_preset")
    own = choice not in PRESETS
    if own:
        st.caption("The network's own filters have different numbers for red, green and blue, so each "
                   "colour has its own grid.")
        separate = True
    else:
        separate = st.toggle("Different numbers for red, green and blue", key="pg_separate",
                             help="Off: one grid whose numbers are used for all three colours. "
                                  "On: a grid for each colour, starting from your numbers so far.")
    start, start_bias = _start_kernel(ctx, choice, slot)
    version_key = (choice, slot if own else None, separate)
    previous = st.session_state.get("pg_start")
    if previous != version_key:
        st.session_state["pg_start"] = version_key
        st.session_state["pg_version"] = st.session_state.get("pg_version", -1) + 1
        carry = previous is not None and previous[:2] == version_key[:2] and separate
        st.session_state["pg_carry"] = st.session_state.get("pg_trial") if carry else None
    if st.session_state.get("pg_carry") is not None:  # one grid -> three: keep the numbers typed so far
        start, start_bias = st.session_state["pg_carry"]
    if not separate:
        st.caption("Your filter's numbers: the same 3x3 grid is used for red, green and blue.")
    _live_filter(ctx, slot, start, start_bias, separate)
    b1, b2 = st.columns(2)
    if b1.button(f"Put this filter into the network as filter {slot + 1}", key="pg_apply", type="primary"):
        kernel, bias = st.session_state["pg_trial"]  # what the grids hold: _live_filter ran just above
        state.set_filter(LAYER, slot, kernel, bias)
        st.rerun()
    if ctx.edited and b2.button("Reset the network to its trained filters", key="pg_reset"):
        state.reset_edits()
        st.rerun()


@st.fragment
def _live_filter(ctx, slot: int, start: np.ndarray, start_bias: float, separate: bool) -> None:
    """The grids, the bias, and the map, ReLU and prediction they make; reruns alone on each edit."""
    version = st.session_state["pg_version"]
    kernel, notes = _editor_tables(version, start, separate)
    # No min/max: Streamlit would silently reset an out-of-range number to the start value; clipped
    # here instead, with a note. (Streamlit itself turns a non-finite number back into the start value.)
    raw_bias = st.number_input("Bias", value=float(start_bias), step=0.1, key=f"pg_bias_{version}",
                               help=f"From -{KERNEL_LIMIT:g} to {KERNEL_LIMIT:g}")
    b, why = clean_kernel(np.array([raw_bias], dtype=object))
    bias = float(b[0])
    notes += [f"Bias: {n}" for n in why]
    for note in notes:
        st.warning(note)
    st.session_state["pg_trial"] = (kernel, bias)

    x = ctx.stages[0].output
    layer = ctx.stage(LAYER).layer
    after = ctx.stages[ctx.index(LAYER) + 1].layer  # the activation: ReLU, unless swapped
    _, _, stride, padding = L.KINDS["conv"].geometry(layer.params, layer.options)
    fmap = L.conv2d(x[None], kernel[None], np.array([bias], np.float32), stride, padding)[0, 0]  # (H, W)
    trial = ctx.model.with_filter(LAYER, slot, kernel, bias)
    p = forward(trial, x[None])[0]
    top = int(p.argmax())
    # The pictures and the answer are ONE element: each element a fragment rerun sends costs the
    # browser a re-render, and this is the part a student waits for after every edit.
    answer = (f"With this as filter {slot + 1}, the network would say: "
              f"<strong>{html.escape(str(ctx.model.classes[top]))}</strong> ({p[top]:.1%}).")
    activated = after(fmap[None, None])[0, 0]  # (H, W)
    title = L.KINDS[after.kind].title
    picture_row([
        (ctx.small, "Input", None, D.describe_picture(ctx.small, "the input picture")),
        (render.diverging(fmap), "Your filter's feature map",
         f"Its numbers run from {fmap.min():.2f} to {fmap.max():.2f}.", D.describe_map(fmap, D.size(fmap.shape))),
        (render.diverging(activated, render.symmetric_limit(fmap)), f"After {title}", None,
         D.describe_map(activated, f"your map after {title}"))],
        ctx.px, footer=answer, box_id="pg-result")
