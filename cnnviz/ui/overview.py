"""Step 5, deeper layers: every stage side by side (CNN Explainer's overview), then any one map up close.

The overview picture is drawn by `render.overview`; this view chooses how each stage is shown, caches
the picture for the whole class, and writes out the arithmetic behind any one number.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import layers as L
from cnnviz import render
from cnnviz.ui import describe as D
from cnnviz.ui.common import clickable, clicked_cell, seeded_slider, show, signed_map

# Layers that read windows but have no weights of their own: the pools.
POOLS = tuple(name for name, kind in L.KINDS.items() if kind.geometry is not None and not kind.params)
# How a stage is drawn in the overview (render.OVERVIEW_BODIES); any other stage by its shape: maps or a list.
BODIES = {"input": "picture", "dense": "scores", "softmax": "probabilities"}

INTRO = """
The first layers find simple things: edges, stripes, patches of one colour. Each deeper layer takes
**all the maps of the layer before** as its input and combines them, so it can react to bigger parts:
corners, textures, an eye, an ear. The maps get smaller after every pooling step, but each of their
numbers looks at a **wider patch** of the picture.
"""

LEGEND = ("Each column is one stage, from the picture (left) to the answer (right). "
          "Red means a positive number, blue a negative one, white zero; every column has its own colour "
          "scale, so maps in one column can be compared. **Click any map** to open it below.")


# ---------------------------------------------------------------- the overview picture


def overview_columns(stages, small: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """The trace (first the input) -> render.overview's columns: (title, what, array), one per stage.

    small: uint8 (h, w, 3), the picture at the model's input size (the input column shows its colours).
    """
    columns = []
    for s in stages:
        what = BODIES.get(s.kind) or ("maps" if s.output.ndim == 3 else "list")
        columns.append(("input" if s.kind == "input" else s.name, what, small if what == "picture" else s.output))
    return columns


def overview_image(stages, classes, small: np.ndarray, scale: int = 1):
    """One picture of the whole network -> (PIL image, ((stage name, map index, (x0, y0, x1, y1)), ...))."""
    return render.overview(overview_columns(stages, small), classes, scale)


def _content_key(ctx, scale: int) -> str:
    """A digest of everything the overview shows, so an edited model or new picture never hits a stale entry."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((scale, ctx.model.classes, ctx.small.shape)).encode())
    h.update(np.ascontiguousarray(ctx.small).tobytes())
    for s in ctx.stages:
        h.update(repr((s.name, s.kind, s.output.shape)).encode())
        h.update(np.ascontiguousarray(s.output, np.float32).tobytes())
    return h.hexdigest()


# Few entries: each holds the whole picture unpacked (about 7.7 MB at scale 2), and every student who
# puts a filter into the network makes a new one (32 entries held ~350 MB in benchmarks/classroom.py).
@st.cache_data(show_spinner=False, max_entries=6)
def _cached_overview(key: str, scale: int, _stages, _classes, _small):
    return overview_image(_stages, _classes, _small, scale)


@st.cache_data(show_spinner=False, max_entries=128)
def _overview_boxes(key: str, scale: int, _stages, _classes, _small) -> tuple[tuple[int, int], tuple]:
    """((height, width), click boxes): all a rerun needs besides the PNG, without unpickling the big picture."""
    img, boxes = _cached_overview(key, scale, _stages, _classes, _small)
    return (img.height, img.width), boxes


@st.cache_data(show_spinner=False, max_entries=128)
def _overview_png(key: str, scale: int, selected: tuple, _stages, _classes, _small) -> bytes:
    """The overview as PNG bytes with the open map (stage name, index) framed in orange."""
    img, boxes = _cached_overview(key, scale, _stages, _classes, _small)
    box = next((b for name, k, b in boxes if (name, k) == selected), None)
    return render.png(img if box is None else render.frame(img, box, width=2 * scale, grow=2 * scale))


class _Png:
    """Ready PNG bytes for streamlit_image_coordinates, which accepts any object with a `save` method:
    it then gets the cached bytes instead of encoding the big picture again on every rerun."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, fp, format=None, **options) -> None:
        fp.write(self.data)


# ---------------------------------------------------------------- receptive field


def receptive_box(layers, i: int, j: int, size) -> tuple[int, int, int, int]:
    """The input pixels that position (i, j) after `layers` (the input's layers up to a stage) depends on,
    clipped to the picture `size` (h, w): (row0, col0, row1, col1), end exclusive."""
    top, left, bottom, right = L.receptive_field(layers, i, j)
    h, w = size
    return max(top, 0), max(left, 0), min(bottom, h), min(right, w)


def _clipped_window_box(layer, i: int, j: int, shape) -> tuple[int, int, int, int]:
    """The cells of a (H, W) map that output (i, j) of `layer` reads, without the padding around it."""
    top, left, bottom, right = L.window_box(i, j, *L.KINDS[layer.kind].geometry(layer.params, layer.options))
    return max(top, 0), max(left, 0), min(bottom, shape[0]), min(right, shape[1])


# ---------------------------------------------------------------- the view


def render_overview(ctx) -> None:
    """Draw step 5: the intro, then the clickable overview and the close-up (one fragment)."""
    st.markdown(INTRO)
    _explorer(ctx)


def _map_stages(ctx) -> list[str]:
    return [s.name for s in ctx.stages[1:] if s.output.ndim == 3]


def _on_click(boxes: tuple, size: tuple[int, int], names: list) -> None:
    """Open the clicked map below: set the picker widgets before they are drawn again."""
    pixel = clicked_cell(st.session_state.get("ov_click"), size)  # (y, x) in the picture as drawn
    if pixel is None:
        return
    y, x = pixel
    for name, k, (x0, y0, x1, y1) in boxes:
        if x0 <= x < x1 and y0 <= y < y1 and name in names:
            st.session_state["ov_stage"] = name
            st.session_state[f"ov_map_{name}"] = k + 1  # maps are numbered from 1 for students
            return


@st.fragment
def _explorer(ctx) -> None:
    scale = 2  # drawn at twice the size and fitted to the page by the browser: sharp on any screen
    key = _content_key(ctx, scale)
    size, boxes = _overview_boxes(key, scale, ctx.stages, ctx.model.classes, ctx.small)
    names = _map_stages(ctx)
    name = st.session_state.get("ov_stage")
    if name not in names:
        name = _default_stage(ctx, names)
    selected = (name, st.session_state.get(f"ov_map_{name}", 1) - 1)
    data = _overview_png(key, scale, selected, ctx.stages, ctx.model.classes, ctx.small)
    st.caption(LEGEND)
    words = D.describe_overview(overview_columns(ctx.stages, ctx.small), ctx.model.classes, ctx.probabilities)
    clickable(_Png(data), "ov_click", f"{words}; map {selected[1] + 1} of {selected[0]} is framed, and opens below",
              width="stretch", cursor="pointer", on_click=partial(_on_click, boxes, size, names))
    st.subheader("Pick any map")
    _close_up(ctx, names, name)


def _default_stage(ctx, names: list[str]) -> str:
    """The first conv after the first pooling (a 'deeper' layer), else the first conv."""
    kinds = [ctx.stage(n).kind for n in names]
    pooled = [kd in POOLS for kd in kinds]
    first_pool = pooled.index(True) if any(pooled) else -1
    convs = [n for n, kd in zip(names, kinds) if kd == "conv"]
    deeper = [n for n, kd in zip(names[first_pool + 1:], kinds[first_pool + 1:]) if kd == "conv"]
    return (deeper or convs or names)[0]


def _close_up(ctx, names: list[str], default: str) -> None:
    """Stage, map and position pickers; the map large with its source; the arithmetic at that position."""
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    if st.session_state.get("ov_stage") not in names:  # first visit, or the activation was swapped
        st.session_state["ov_stage"] = default
    name = c1.selectbox("Stage", names, key="ov_stage")
    index = ctx.index(name)
    stage, prev = ctx.stages[index], ctx.stages[index - 1]
    C, H, W = stage.output.shape
    # Maps, rows and columns count from 1 for students; the slider keys name the stage, so each keeps its place.
    k = seeded_slider(c2, "Map", 1, C, 1, f"ov_map_{name}") - 1
    i = seeded_slider(c3, "Row", 1, H, H // 2 + 1, f"ov_row_{name}") - 1
    j = seeded_slider(c4, "Column", 1, W, W // 2 + 1, f"ov_col_{name}") - 1
    px = ctx.px
    box = receptive_box(ctx.model.layers[:index], i, j, ctx.small.shape[:2])  # stage k is made by layer k - 1
    rh, rw = box[2] - box[0], box[3] - box[1]
    left, mid, right = st.columns([1, 1, 1.5])
    with left:
        pic = render.outline(render.upscale(ctx.small, px), box, ctx.small.shape[:2], width=3)
        show(pic, f"This number looks at a {rh}x{rw} patch of the picture",
             D.describe_picture(ctx.small, "The input picture", box=box, box_name="patch"))
    with mid:
        m = signed_map(stage.output[k], px, render.symmetric_limit(stage.output))
        show(render.outline(m, (i, j, i + 1, j + 1), (H, W)),
             f"{name}, map {k + 1}: {stage.output[k, i, j]:.3f} at row {i + 1}, column {j + 1}",
             D.describe_map(stage.output[k], f"Map {k + 1} of {name}", "{:.3f}", mark=(i, j)))
    CLOSE_UPS.get(stage.kind, _no_arithmetic)(ctx, stage, prev, k, i, j, right)


# ---------------------------------------------------------------- a conv layer's number, taken apart


def conv_arithmetic(stage, prev, k: int, i: int, j: int) -> dict:
    """Everything the close-up writes out for conv output (k, i, j), computed with layers.conv2d.

    Returns window (C, KH, KW), padded (KH, KW) mask, kernel (C, KH, KW), partial sums (C,),
    bias, total (conv2d on the window) and value (the stage's own output there).
    """
    la = stage.layer
    w, b = la.params["weight"], la.params.get("bias")
    kh, kw, s, p = L.KINDS["conv"].geometry(la.params, la.options)
    x = prev.output
    window = L.window(x, i, j, kh, kw, s, p)  # (C, KH, KW), zeros where it hangs over the edge
    padded = L.window(np.ones((1, *x.shape[1:]), bool), i, j, kh, kw, s, p)[0] == 0  # (KH, KW)
    one = window[None]  # (1, C, KH, KW): the one window, so conv2d gives one number
    partial_sums = np.array([L.conv2d(one[:, c:c + 1], w[k:k + 1, c:c + 1])[0, 0, 0, 0] for c in range(len(window))])
    bias = float(b[k]) if b is not None else 0.0
    total = float(L.conv2d(one, w[k:k + 1], None if b is None else b[k:k + 1])[0, 0, 0, 0])
    return {"window": window, "padded": padded, "kernel": w[k], "partial": partial_sums, "bias": bias,
            "total": total, "value": float(stage.output[k, i, j])}


def _channel_names(prev) -> list[str]:
    return ["R", "G", "B"] if prev.kind == "input" else [str(c + 1) for c in range(prev.output.shape[0])]


def _conv_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    """The partial sums table, one channel's window x kernel, the total and its check; the source maps."""
    a = conv_arithmetic(stage, prev, k, i, j)
    C, kh, kw = a["window"].shape
    chans = _channel_names(prev)
    st.markdown(f"#### How {stage.name}, map {k + 1} got {a['value']:.3f} at row {i + 1}, column {j + 1}")
    st.markdown(f"The filter has one {kh}x{kw} kernel **for each of the {C} input maps**. Each kernel is laid on "
                f"its map's window; the {kh * kw} products are added up to a *partial sum*. All partial sums plus "
                "the bias give the number.")
    t_col, g_col = st.columns([1, 2.4])
    with t_col:
        table = pd.DataFrame({"input map": [f"{prev.name} {n}" for n in chans], "partial sum": a["partial"]})
        st.dataframe(table, hide_index=True, height=min(36 + 35 * C, 320),
                     column_config={"partial sum": st.column_config.NumberColumn(format="%.4f")})
    with g_col:
        c = _channel_detail(ctx, stage, prev, a, chans, (k, i, j))
    ok = np.isclose(a["total"], a["value"], rtol=1e-4, atol=1e-5)
    bias = f"the bias **{a['bias']:+.4f}**" if stage.layer.params.get("bias") is not None else \
        "no bias (this layer has none) **+0.0000**"
    st.markdown(f"Sum of the {C} partial sums: **{a['partial'].sum():.4f}**  \n"
                f"plus {bias} = **{a['total']:.4f}**")
    mark = "✓" if ok else "✗"
    st.markdown(f"{mark} conv2d on this window gives **{a['total']:.4f}**; the map holds **{a['value']:.4f}**.")
    with right:
        _source_maps(ctx, stage, prev, c, i, j)


def _channel_detail(ctx, stage, prev, a: dict, chans: list[str], where: tuple) -> int:
    """Window x kernel = products for one input map (the strongest one unless picked); returns its index."""
    strongest = int(np.argmax(np.abs(a["partial"])))
    if ctx.presentation:
        c = strongest
    else:
        k, i, j = where
        c = st.selectbox("Look inside one input map", range(len(chans)), index=strongest,
                         format_func=lambda n: f"{prev.name} {chans[n]} (partial sum {a['partial'][n]:+.3f})",
                         key=f"ov_chan_{stage.name}_{k}_{i}_{j}")  # a new position starts at its strongest map
    cell = 60 if ctx.presentation else 44
    win_colors = render.diverging(a["window"][c], render.symmetric_limit(prev.output))
    win_colors[a["padded"]] = 215  # padding cells grey
    kernel, products = a["kernel"][c], a["window"][c] * a["kernel"][c]
    grids = [render.number_grid(a["window"][c], win_colors, cell),
             render.number_grid(kernel, render.diverging(kernel), cell),
             render.number_grid(products, render.diverging(products), cell)]
    source = f"{prev.name} {chans[c]}"
    alt = (f"The {D.size(kernel.shape)} window of {source} times the kernel gives {kernel.size} products, "
           f"which add up to {a['partial'][c]:+.4f}; the numbers are in the table that follows"
           + ("; grey cells are padding outside the map, counted as 0" if a["padded"].any() else ""))
    show(render.equation(grids, ["×", "="], labels=[f"window of {source}", "kernel",
                                                     f"sum = {a['partial'][c]:+.4f}"]),
         alt=alt, table=D.products_table(a["window"][c], kernel, f"Window of {source} × kernel = product"))
    if a["padded"].any():
        st.caption("Grey cells lie outside the map: the padding, which counts as 0.")
    return c


def _source_maps(ctx, stage, prev, c: int, i: int, j: int) -> None:
    """Every input map with the window outlined in yellow; map c framed in orange."""
    x = prev.output
    C, H, W = x.shape
    vmax = render.symmetric_limit(x)
    cols = C if C <= 4 else int(np.ceil(np.sqrt(C)))  # about square, so it stays short and wide enough
    budget = 460 if ctx.presentation else 360  # the mosaic must fit its column on a 1280-pixel screen
    t = max(1, (budget // cols - 3) // W) * W  # a whole number of pixels per cell
    box = _clipped_window_box(stage.layer, i, j, (H, W))
    tiles = []
    for n in range(C):
        tile = render.outline(signed_map(x[n], t, vmax), box, (H, W), width=2)
        if n == c:
            tile = render.outline(tile, (0, 0, H, W), (H, W), color=(255, 120, 0), width=3)
        tiles.append(tile)
    show(render.mosaic(tiles, cols, pad=3, labels=_channel_names(prev)),
         f"It came from all {C} maps of {prev.name}; the yellow squares are the window",
         D.describe_mosaic(x, prev.name, box, framed=c))


# ---------------------------------------------------------------- pools and activations: one map in, one out


WINDOW_WORDS = {"maxpool": "largest", "avgpool": "average"}


def _window_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    """A pool: its window of the source map, outlined, and the one number it keeps."""
    la = stage.layer
    x = prev.output[k]
    kh, kw, s, p = L.KINDS[la.kind].geometry(la.params, la.options)
    window = L.window(x[None], i, j, kh, kw, s, p)[0]  # (KH, KW)
    value = float(la(window[None, None])[0, 0, 0, 0])
    text = f"The {WINDOW_WORDS.get(stage.kind, L.KINDS[stage.kind].title)} of these {window.size} numbers is " \
           f"**{value:.4f}**."
    spot = np.unravel_index(int(np.argmax(window)), window.shape) if stage.kind == "maxpool" else None  # the kept one
    _one_map_check(ctx, stage, prev, k, i, j, right, window, value, text, _clipped_window_box(la, i, j, x.shape),
                   spot)


def _elementwise_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    """An activation: the one number it reads, and what it makes of it."""
    la = stage.layer
    window = prev.output[k, i:i + 1, j:j + 1]  # (1, 1): an activation reads one number
    value = float(la(window[None, None])[0, 0, 0, 0])
    kind = L.KINDS[stage.kind]
    text = f"{kind.title}({float(window[0, 0]):.4f}) = **{value:.4f}**  \n({kind.describe} In symbols: {kind.formula}.)"
    _one_map_check(ctx, stage, prev, k, i, j, right, window, value, text, (i, j, i + 1, j + 1), None)


def _one_map_check(ctx, stage, prev, k, i, j, right, window, value, text, box, spot) -> None:
    """The source map with the window outlined, the window's numbers, and the check against the stage."""
    x = prev.output[k]
    with right:
        src = signed_map(x, ctx.px, render.symmetric_limit(prev.output))
        show(render.outline(src, box, x.shape), f"It came from {prev.name}, map {k + 1}",
             D.describe_map(x, f"Map {k + 1} of {prev.name}", box=box))
    cell = 60 if ctx.presentation else 44
    what = f"The numbers of map {k + 1} of {prev.name} that {stage.name} reads at {D.where(i, j)}"
    show(render.number_grid(window, render.diverging(window, render.symmetric_limit(prev.output)), cell,
                            highlight=spot),
         alt=D.describe_numbers(window, what, mark=spot), table=D.numbers_table(window, what))
    ok = np.isclose(value, stage.output[k, i, j], rtol=1e-4, atol=1e-6)
    st.markdown(f"{text}  \n{'✓' if ok else '✗'} The map holds **{float(stage.output[k, i, j]):.4f}**.")


def _no_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    st.caption(f"cnnviz cannot take a {stage.kind} layer's numbers apart yet.")


# One close-up per kind of stage that makes maps.
CLOSE_UPS = {"conv": _conv_arithmetic, **{kind: _window_arithmetic for kind in POOLS},
             **{kind: _elementwise_arithmetic for kind in L.ACTIVATIONS}}
