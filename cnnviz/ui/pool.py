"""Step 4, max pooling: a worked 4x4 example, then the real maps going into the first pooling layer."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz import layers as L
from cnnviz import render
from cnnviz.model import Stage
from cnnviz.ui import describe as D
from cnnviz.ui.common import clickable, clicked_cell, new_click, seeded_slider, show, signed_map
from cnnviz.ui.state import Context

# CNN Explainer's kind of example: whole numbers, one clear winner in every 2x2 window.
EXAMPLE = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]], np.float32)
WINDOWS = ("top left", "top right", "bottom left", "bottom right")
PALE = np.array([[198, 219, 239], [199, 233, 192], [253, 208, 162], [218, 218, 235]], np.uint8)
STRONG = np.array([[107, 174, 214], [116, 196, 118], [253, 141, 60], [158, 154, 200]], np.uint8)

INTRO = """
**Max pooling** makes every map smaller. It cuts the map into 2x2 windows and keeps only the
**largest** number of each window. The map keeps the message *"this feature was found here, roughly"*,
and the next layers have **4 times fewer numbers** to work through.
"""

AVERAGE = """
**Average pooling** keeps the mean of the four numbers instead. When a feature lights up just one
cell of a window, max keeps it at full strength, while average waters it down with the weaker
neighbours. The map after average pooling looks smoother and paler. Networks like this one use max:
*"was the feature anywhere in here?"* matters more than *"how strong was it on average?"*
"""


def pooling_stages(ctx: Context, kind: str = "maxpool") -> tuple[Stage, Stage]:
    """The first `kind` stage and the stage feeding it (found by position, so any activation name works)."""
    i = next(k for k, s in enumerate(ctx.stages) if s.kind == kind)
    return ctx.stages[i - 1], ctx.stages[i]


def pool_window(x: np.ndarray, r: int, c: int, layer) -> np.ndarray:
    """The window of map x (H, W) that output cell (r, c) of pooling `layer` reads: (size, size)."""
    kh, kw, stride, padding = L.KINDS[layer.kind].geometry(layer.params, layer.options)
    return L.window(x[None], r, c, kh, kw, stride, padding)[0]


def busy_window(x: np.ndarray, size: int, stride: int) -> tuple[int, int]:
    """1-based (row, col) of the output cell whose window of x (H, W) has the widest spread of values:
    a better first example than a flat corner."""
    spread = L.max_pool2d(x[None, None], size, stride) + L.max_pool2d(-x[None, None], size, stride)  # (1, 1, H', W')
    r, c = np.unravel_index(np.argmax(spread[0, 0]), spread.shape[2:])
    return int(r) + 1, int(c) + 1


def frame(img, box, grid_shape):
    """A dark frame drawn just outside the cells of `box`, so it hides none of their colour."""
    r0, c0, r1, c1 = box
    grow = 3 / (img.width / grid_shape[1])  # 3 pixels, in cells
    return render.outline(img, (r0 - grow, c0 - grow, r1 + grow, c1 + grow), grid_shape, color=(20, 20, 20),
                          width=3)


def sizes_sentence(before: np.ndarray, after: np.ndarray) -> str:
    """'16 maps of 32x32 = 16,384 numbers → 16 maps of 16x16 = 4,096 numbers' for (C, H, W) arrays."""
    def part(a):
        return f"{a.shape[0]} maps of {a.shape[1]}x{a.shape[2]} = {a.size:,} numbers"
    return f"{part(before)} → {part(after)}"


def render_maxpool(ctx: Context) -> None:
    st.markdown(INTRO)
    _worked_example(ctx)
    st.divider()
    src, pooled = pooling_stages(ctx)
    _explorer(ctx, src, pooled)


@st.fragment
def _worked_example(ctx: Context) -> None:
    st.subheader("A small example first")
    w = st.segmented_control("Look at the window", range(4), default=0, required=True,
                             format_func=lambda i: WINDOWS[i], key="pool_example_window")
    out = L.max_pool2d(EXAMPLE[None, None], 2)[0, 0]  # (2, 2)
    ids = np.arange(4).reshape(2, 2)  # which window each output cell is
    win_of_cell = ids.repeat(2, 0).repeat(2, 1)  # (4, 4)
    colors_in = np.where((win_of_cell == w)[..., None], STRONG[win_of_cell], PALE[win_of_cell])
    colors_out = np.where((ids == w)[..., None], STRONG[ids], PALE[ids])
    wr, wc = divmod(w, 2)
    window = L.window(EXAMPLE[None], wr, wc, 2, 2, stride=2)[0]  # (2, 2)
    i, j = np.unravel_index(np.argmax(window), window.shape)
    cell = 70 if ctx.presentation else 60
    a, arrow, b, words = st.columns([1.5, 0.5, 0.8, 1.5], vertical_alignment="center")
    with a:
        inside = D.describe_box((2 * wr, 2 * wc, 2 * wr + 2, 2 * wc + 2))
        what = (f"4 by 4 input, cut into four 2 by 2 windows; the {WINDOWS[w]} one ({inside}) is coloured "
                f"strongly and its largest number, {window.max():.0f}, is framed")
        show(render.number_grid(EXAMPLE, colors_in, cell=cell, fmt="{:.0f}", highlight=(2 * wr + i, 2 * wc + j)),
             "4x4 input: four 2x2 windows", what, D.numbers_table(EXAMPLE, "The 4 by 4 input", "{:.0f}"))
    arrow.markdown("<div style='text-align:center;font-size:1.6rem'>→ max →</div>", unsafe_allow_html=True)
    with b:
        show(render.number_grid(out, colors_out, cell=cell, fmt="{:.0f}", highlight=(wr, wc)), "2x2 result",
             D.describe_numbers(out, "The 2 by 2 result, one number per window", "{:.0f}", (wr, wc)),
             D.numbers_table(out, "The 2 by 2 result", "{:.0f}"))
    with words:
        nums = ", ".join(f"{v:.0f}" for v in window.ravel())
        st.markdown(f"The **{WINDOWS[w]}** window holds {nums}. The largest is **{window.max():.0f}**, "
                    f"so {window.max():.0f} goes to the {WINDOWS[w]} of the result.")
        fewer = 1 - out.size / EXAMPLE.size
        st.markdown(f"**{EXAMPLE.size} numbers become {out.size}: {fewer:.0%} fewer.**")


def _window_from_click(shape_out: tuple[int, int]) -> None:
    """A new click on the input map moves the window: write the pooled cell under it into the sliders' state.

    The input map and the pooled map are drawn the same size in cells per window, so the click's place
    on the picture is the same fraction of the pooled map.
    """
    cell = clicked_cell(new_click("pool_click"), shape_out)
    if cell is not None:
        st.session_state["pool_row"], st.session_state["pool_col"] = cell[0] + 1, cell[1] + 1


@st.fragment
def _explorer(ctx: Context, src: Stage, pooled: Stage) -> None:
    x, y = src.output, pooled.output  # (C, H, W) and (C, H', W')
    layer = pooled.layer
    C, rows_out, cols_out = y.shape
    st.subheader(f"Now the real maps: {src.name} → {pooled.name}")
    st.markdown(f"**{sizes_sentence(x, y)}**")
    _window_from_click((rows_out, cols_out))
    k = st.slider(f"Which map of {src.name}?", 1, C, 1, key="pool_map") - 1
    kh, kw, stride, padding = L.KINDS[layer.kind].geometry(layer.params, layer.options)
    # The window sliders show in every mode: they are the keyboard's way to move the window.
    busy = busy_window(x[k], kh, stride) if "pool_row" not in st.session_state else (1, 1)
    s1, s2, s3 = st.columns([1, 1, 0.8], vertical_alignment="bottom")
    r = seeded_slider(s1, "Window row", 1, rows_out, busy[0], "pool_row") - 1
    c = seeded_slider(s2, "Window column", 1, cols_out, busy[1], "pool_col") - 1
    compare = False if ctx.presentation else s3.toggle("Compare with average pooling", key="pool_avg")

    m, p = x[k], y[k]
    vmax = render.symmetric_limit(m)
    window = pool_window(m, r, c, layer)  # (size, size)
    kept = float(layer(window[None, None])[0, 0, 0, 0])
    stored = float(p[r, c])
    i, j = np.unravel_index(np.argmax(window), window.shape)

    w_in = 320 if ctx.presentation else 288  # fits its column; input and output share one cell size
    w_out = w_in * p.shape[1] // m.shape[1]
    box = L.window_box(r, c, kh, kw, stride, padding)
    cols = st.columns([1.4, 0.8, 0.8, 1.2] if compare else [1.4, 0.8, 1.4])
    inside = (max(box[0], 0), max(box[1], 0), min(box[2], m.shape[0]), min(box[3], m.shape[1]))
    with cols[0]:
        big = frame(signed_map(m, w_in, vmax), box, m.shape)
        clickable(big, "pool_click", D.describe_map(m, f"Map {k + 1} of {src.name}", box=inside),
                  width=big.width, png_compression_level=1, cursor="pointer")
        st.caption(f"{src.name}, map {k + 1}: {m.shape[0]}x{m.shape[1]}. Click it (or use the sliders) to move "
                   "the window.")
    with cols[1]:
        show(frame(signed_map(p, w_out, vmax), (r, c, r + 1, c + 1), p.shape), f"Max pooled: {p.shape[0]}x{p.shape[1]}",
             D.describe_map(p, f"Map {k + 1} after max pooling", mark=(r, c)))
    if compare:
        avg = L.avg_pool2d(m[None, None], kh, stride)[0, 0]  # (H', W')
        with cols[2]:
            show(frame(signed_map(avg, w_out, vmax), (r, c, r + 1, c + 1), avg.shape),
                 f"Average pooled: {avg.shape[0]}x{avg.shape[1]}",
                 D.describe_map(avg, f"Map {k + 1} after average pooling", mark=(r, c)))
    with cols[-1]:
        what = f"The window of map {k + 1} at {D.where(r, c)} of the pooled map"
        show(render.number_grid(window, render.diverging(window, vmax), cell=80 if ctx.presentation else 64,
                                highlight=(int(i), int(j))), "The window (kept number framed)",
             D.describe_numbers(window, what, mark=(int(i), int(j))), D.numbers_table(window, what))
        nums = ", ".join(f"{v:.2f}" for v in window.ravel())
        st.markdown(f"max({nums}) = **{kept:.2f}**")
        if np.isclose(kept, stored, rtol=0, atol=1e-6):
            st.markdown(f":green[**✓ Same number**] as the pooled map at row {r + 1}, column {c + 1}: "
                        f"**{stored:.2f}**")
        else:
            st.error(f"The pooled map holds {stored:.4f} here, not {kept:.4f}: this should never happen.")
        if compare:
            st.markdown(f"average = ({' + '.join(f'{v:.2f}' for v in window.ravel())}) / {window.size} "
                        f"= **{window.mean():.2f}**")
    show(render.legend(vmax, width=ctx.px), alt=D.describe_legend(vmax))
    if compare:
        st.markdown(AVERAGE)
    _later_pools(ctx, pooled.name)


def _later_pools(ctx: Context, first: str) -> None:
    """The same shrinking happens again deeper in the network."""
    for i, s in enumerate(ctx.stages):
        if s.kind == "maxpool" and s.name != first:
            st.caption(f"Later, {s.name} does the same again: {sizes_sentence(ctx.stages[i - 1].output, s.output)}.")
