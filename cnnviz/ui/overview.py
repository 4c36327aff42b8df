"""Step 5, deeper layers: every stage side by side (CNN Explainer's overview), then any one map up close."""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw
from streamlit_image_coordinates import streamlit_image_coordinates

from cnnviz import layers as L
from cnnviz import render
from cnnviz.ui.common import explain, show, signed_map

ROWS = 16  # thumbnails per sub-column of the overview
POOLS = ("maxpool", "avgpool")

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


def overview_image(stages, classes, small: np.ndarray, scale: int = 1):
    """One picture of the whole network: a column per stage, labelled with its name and shape.

    stages: the trace (first the input); small: uint8 (h, w, 3) input picture.
    Returns (PIL image, boxes) where boxes = ((stage name, map index, (x0, y0, x1, y1)), ...).
    """
    s = scale
    thumb, pad, gap = 32 * s, 3 * s, 16 * s
    name_font, shape_font = render.font(13 * s), render.font(11 * s)
    maps_h = ROWS * (thumb + pad)
    columns = []  # (title, shape text, body image, [(map index, box in body)])
    for st_ in stages:
        a, shape = st_.output, "x".join(str(n) for n in st_.output.shape)
        if st_.kind == "input":
            planes = [render.upscale(render.channel_plane(small, c), thumb) for c in range(3)]
            body, boxes = _stack(planes, pad)
            columns.append(("input", shape, body, []))
        elif a.ndim == 3:
            vmax = render.symmetric_limit(a)
            body, boxes = _stack([render.upscale(render.diverging(m, vmax), thumb) for m in a], pad)
            columns.append((st_.name, shape, body, boxes))
        elif st_.kind == "softmax":
            columns.append((st_.name, shape, _prob_bars(a, s), []))
        elif st_.kind == "dense":
            columns.append((st_.name, shape, _score_bars(a, classes, s), []))
        else:  # a long vector, e.g. flatten: a strip read row by row
            columns.append((st_.name, shape, _strip(a, maps_h, s), []))
    body_h = max(c[2].height for c in columns)
    head_h = 32 * s
    widths = [max(c[2].width, int(name_font.getlength(c[0])), int(shape_font.getlength(c[1]))) for c in columns]
    out = Image.new("RGB", (sum(widths) + gap * (len(columns) - 1) + 8 * s, head_h + body_h + 8 * s), "white")
    d = ImageDraw.Draw(out)
    x, all_boxes = 4 * s, []
    for (title, shape, body, boxes), w in zip(columns, widths):
        cx = x + w // 2
        d.text((cx, 2 * s), title, fill=(20, 20, 20), font=name_font, anchor="ma")
        d.text((cx, 17 * s), shape, fill=(110, 110, 110), font=shape_font, anchor="ma")
        bx, by = x + (w - body.width) // 2, head_h + (body_h - body.height) // 2
        out.paste(body, (bx, by))
        all_boxes += [(title, k, (bx + b[0], by + b[1], bx + b[2], by + b[3])) for k, b in boxes]
        if x + w + gap < out.width:  # an arrow to the next column
            ay, ax = head_h + body_h // 2, x + w + gap // 2
            d.polygon([(ax - 3 * s, ay - 5 * s), (ax + 4 * s, ay), (ax - 3 * s, ay + 5 * s)], fill=(175, 175, 175))
        x += w + gap
    return out, tuple(all_boxes)


def _stack(thumbs: list, pad: int):
    """Same-size thumbnails top to bottom, ROWS per sub-column; returns (image, [(index, box)])."""
    w, h = thumbs[0].size
    cols = -(-len(thumbs) // ROWS)
    rows = min(len(thumbs), ROWS)
    img = Image.new("RGB", (cols * (w + pad) - pad, rows * (h + pad) - pad), "white")
    boxes = []
    for k, t in enumerate(thumbs):
        x, y = (k // ROWS) * (w + pad), (k % ROWS) * (h + pad)
        img.paste(t, (x, y))
        boxes.append((k, (x, y, x + w, y + h)))
    return img, boxes


def _strip(v: np.ndarray, height: int, s: int) -> Image.Image:
    """A long vector as a block of 16 cells a row, in its own order (left to right, top to bottom)."""
    cols = 16
    rows = -(-v.size // cols)
    grid = np.zeros(rows * cols, np.float32)
    grid[:v.size] = v.ravel()
    cell = max(1, min(3, height // rows))
    rgb = render.diverging(grid.reshape(rows, cols))  # (rows, 16, 3)
    return Image.fromarray(rgb).resize((cols * cell, rows * cell), Image.Resampling.NEAREST)


def _score_bars(z: np.ndarray, classes, s: int) -> Image.Image:
    """Class names with a signed bar each (zero in the middle); the top class darker."""
    f, row, bar = render.font(10 * s), 20 * s, 50 * s
    label_w = int(max(f.getlength(c) for c in classes)) + 6 * s
    img = Image.new("RGB", (label_w + bar, len(z) * row), "white")
    d = ImageDraw.Draw(img)
    reach, top, zero = render.symmetric_limit(z), int(np.argmax(z)), label_w + bar // 2
    for k, (c, v) in enumerate(zip(classes, z)):
        y = k * row
        d.text((label_w - 4 * s, y + row // 2), c, fill=(20, 20, 20), font=f, anchor="rm")
        end = zero + v / reach * (bar // 2 - 1)
        color = ((178, 24, 43) if k == top else (244, 165, 130)) if v >= 0 else (146, 197, 222)
        d.rectangle([min(zero, end), y + 4 * s, max(zero, end), y + row - 4 * s], fill=color)
    d.line([zero, 0, zero, img.height], fill=(120, 120, 120), width=1)
    return img


def _prob_bars(p: np.ndarray, s: int) -> Image.Image:
    """Probabilities as bars from 0 to 100% with the percentage; rows line up with the score column."""
    f, row, bar = render.font(10 * s), 20 * s, 44 * s
    img = Image.new("RGB", (bar + 32 * s, len(p) * row), "white")
    d = ImageDraw.Draw(img)
    top = int(np.argmax(p))
    for k, v in enumerate(p):
        y = k * row
        d.rectangle([0, y + 4 * s, bar, y + row - 4 * s], fill=(238, 238, 238))
        d.rectangle([0, y + 4 * s, max(1, v * bar), y + row - 4 * s],
                    fill=(214, 96, 77) if k == top else (146, 197, 222))
        d.text((bar + 4 * s, y + row // 2), f"{v:.0%}", fill=(20, 20, 20), font=f, anchor="lm")
    return img


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
def _overview_boxes(key: str, scale: int, _stages, _classes, _small) -> tuple[int, tuple]:
    """(image width, click boxes): all a rerun needs besides the PNG, without unpickling the big picture."""
    img, boxes = _cached_overview(key, scale, _stages, _classes, _small)
    return img.width, boxes


@st.cache_data(show_spinner=False, max_entries=128)
def _overview_png(key: str, scale: int, selected: tuple, _stages, _classes, _small) -> bytes:
    """The overview as PNG bytes with the open map (stage name, index) outlined in orange."""
    img, boxes = _cached_overview(key, scale, _stages, _classes, _small)
    img = img.copy()
    for name, k, (x0, y0, x1, y1) in boxes:
        if (name, k) == selected:
            ImageDraw.Draw(img).rectangle([x0 - 2 * scale, y0 - 2 * scale, x1 + scale, y1 + scale],
                                          outline=(255, 140, 0), width=2 * scale)
    return render.png(img)


class _Png:
    """Ready PNG bytes for streamlit_image_coordinates, which accepts any object with a `save` method:
    it then gets the cached bytes instead of encoding the big picture again on every rerun."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, fp, format=None, **options) -> None:
        fp.write(self.data)


# ---------------------------------------------------------------- receptive field


def receptive_box(layers, upto: int, i: int, j: int, size) -> tuple:
    """The input pixels that output (i, j) of layer `upto` (an index into `layers`) depends on.

    Walks back through the convs and pools: a k x k window with stride s and padding p
    maps output rows r0..r1 to input rows r0*s - p .. r1*s - p + k - 1.
    Returns (row0, col0, row1, col1), end exclusive, clipped to the picture `size` (h, w).
    """
    r0, r1, c0, c1 = i, i, j, j
    for la in reversed(layers[:upto + 1]):
        if la.kind == "conv":
            kh, kw = la.params["weight"].shape[2:]
            s, p = la.options.get("stride", 1), la.options.get("padding", 0)
        elif la.kind in POOLS:
            kh = kw = la.options.get("size", 2)
            s, p = la.options.get("stride") or kh, 0
        else:
            continue
        r0, r1 = r0 * s - p, r1 * s - p + kh - 1
        c0, c1 = c0 * s - p, c1 * s - p + kw - 1
    h, w = size
    return max(r0, 0), max(c0, 0), min(r1 + 1, h), min(c1 + 1, w)


# ---------------------------------------------------------------- the view


def render_overview(ctx) -> None:
    """Draw step 5: the intro, then the clickable overview and the close-up (one fragment)."""
    explain(INTRO)
    _explorer(ctx)


def _map_stages(ctx) -> list[str]:
    return [s.name for s in ctx.stages[1:] if s.output.ndim == 3]


def _on_click(boxes: tuple, natural_width: int, names: list) -> None:
    """Open the clicked map below: set the picker widgets before they are drawn again."""
    click = st.session_state.get("ov_click")
    if not click or not click.get("width"):
        return
    f = natural_width / click["width"]
    x, y = click["x"] * f, click["y"] * f
    for name, k, (x0, y0, x1, y1) in boxes:
        if x0 <= x < x1 and y0 <= y < y1 and name in names:
            st.session_state["ov_stage"] = name
            st.session_state[f"ov_map_{name}"] = k + 1  # maps are numbered from 1 for students
            return


@st.fragment
def _explorer(ctx) -> None:
    scale = 2  # drawn at twice the size and fitted to the page by the browser: sharp on any screen
    key = _content_key(ctx, scale)
    width, boxes = _overview_boxes(key, scale, ctx.stages, ctx.model.classes, ctx.small)
    names = _map_stages(ctx)
    name = st.session_state.get("ov_stage")
    if name not in names:
        name = _default_stage(ctx, names)
    selected = (name, st.session_state.get(f"ov_map_{name}", 1) - 1)
    data = _overview_png(key, scale, selected, ctx.stages, ctx.model.classes, ctx.small)
    st.caption(LEGEND)
    streamlit_image_coordinates(_Png(data), width="stretch", key="ov_click", cursor="pointer",
                                on_click=partial(_on_click, boxes, width, names))
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
    index = ctx.stages.index(ctx.stage(name))
    stage, prev = ctx.stages[index], ctx.stages[index - 1]
    C, H, W = stage.output.shape
    k = _pick(c2, "Map", C, 0, f"ov_map_{name}", first=1)
    i = _pick(c3, "Row", H, H // 2, f"ov_row_{name}")
    j = _pick(c4, "Column", W, W // 2, f"ov_col_{name}")
    px = ctx.px
    box = receptive_box(ctx.model.layers, index - 1, i, j, ctx.small.shape[:2])
    rh, rw = box[2] - box[0], box[3] - box[1]
    left, mid, right = st.columns([1, 1, 1.5])
    with left:
        pic = render.outline(render.upscale(ctx.small, px), box, ctx.small.shape[:2], width=3)
        show(pic, f"This number looks at a {rh}x{rw} patch of the picture")
    with mid:
        m = signed_map(stage.output[k], px, render.symmetric_limit(stage.output))
        show(render.outline(m, (i, j, i + 1, j + 1), (H, W)),
             f"{name}, map {k + 1}: {stage.output[k, i, j]:.3f} at row {i}, column {j}")
    if stage.kind == "conv":
        _conv_arithmetic(ctx, stage, prev, k, i, j, right)
    else:
        _simple_arithmetic(ctx, stage, prev, k, i, j, right)


def _pick(container, label: str, n: int, start: int, key: str, first: int = 0) -> int:
    """A slider over index 0..n-1, shown as first..n-1+first (maps count from 1, rows and columns
    from 0); returns the index (0 when there is only one).

    Its value is seeded through session state, never as a default as well (Streamlit warns about both),
    which also lets a click on the overview set it.
    """
    if n < 2:
        return 0
    if not first <= st.session_state.get(key, -1) < n + first:
        st.session_state[key] = start + first
    return int(container.slider(label, first, n - 1 + first, key=key)) - first


def _conv_window(stage, prev, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The (C, KH, KW) input window under output (i, j), zero padding included, and a mask of padded cells."""
    la = stage.layer
    kh, kw = la.params["weight"].shape[2:]
    s, p = la.options.get("stride", 1), la.options.get("padding", 0)
    x = prev.output
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))  # (C, H + 2p, W + 2p), zeros as conv2d pads
    inside = np.pad(np.ones(x.shape[1:], bool), p)
    r, c = i * s, j * s
    return xp[:, r:r + kh, c:c + kw], ~inside[r:r + kh, c:c + kw]


def conv_arithmetic(stage, prev, k: int, i: int, j: int) -> dict:
    """Everything the close-up writes out for conv output (k, i, j), computed with layers.conv2d.

    Returns window (C, KH, KW), padded (KH, KW) mask, kernel (C, KH, KW), partial sums (C,),
    bias, total (conv2d on the window) and value (the stage's own output there).
    """
    w, b = stage.layer.params["weight"], stage.layer.params.get("bias")
    window, padded = _conv_window(stage, prev, i, j)
    x = window[None]  # (1, C, KH, KW): the one window, so conv2d gives one number
    partial_sums = np.array([L.conv2d(x[:, c:c + 1], w[k:k + 1, c:c + 1])[0, 0, 0, 0] for c in range(len(window))])
    bias = float(b[k]) if b is not None else 0.0
    total = float(L.conv2d(x, w[k:k + 1], None if b is None else b[k:k + 1])[0, 0, 0, 0])
    return {"window": window, "padded": padded, "kernel": w[k], "partial": partial_sums, "bias": bias,
            "total": total, "value": float(stage.output[k, i, j])}


def _channel_names(prev) -> list[str]:
    return ["R", "G", "B"] if prev.kind == "input" else [str(c + 1) for c in range(prev.output.shape[0])]


def _conv_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    """The partial sums table, one channel's window x kernel, the total and its check; the source maps."""
    a = conv_arithmetic(stage, prev, k, i, j)
    C, kh, kw = a["window"].shape
    chans = _channel_names(prev)
    st.markdown(f"#### How {stage.name}, map {k + 1} got {a['value']:.3f} at row {i}, column {j}")
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
    st.markdown(f"Sum of the {C} partial sums: **{a['partial'].sum():.4f}**  \n"
                f"plus the bias **{a['bias']:+.4f}** = **{a['total']:.4f}**")
    mark = "✓" if ok else "✗"
    st.markdown(f"{mark} conv2d on this window gives **{a['total']:.4f}**; the map holds **{a['value']:.4f}**.")
    with right:
        _source_maps(ctx, stage, prev, a, chans, c, i, j)


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
    show(render.equation(grids, ["×", "="], labels=[f"window of {prev.name} {chans[c]}", "kernel",
                                                     f"sum = {a['partial'][c]:+.4f}"]))
    if a["padded"].any():
        st.caption("Grey cells lie outside the map: the padding, which counts as 0.")
    return c


def _source_maps(ctx, stage, prev, a: dict, chans: list[str], c: int, i: int, j: int) -> None:
    """Every input map with the window outlined in yellow; map c framed in orange."""
    x = prev.output
    C, H, W = x.shape
    vmax = render.symmetric_limit(x)
    cols = C if C <= 4 else int(np.ceil(np.sqrt(C)))  # about square, so it stays short and wide enough
    budget = 460 if ctx.presentation else 360  # the mosaic must fit its column on a 1280-pixel screen
    t = max(1, (budget // cols - 3) // W) * W  # a whole number of pixels per cell
    s, p = stage.layer.options.get("stride", 1), stage.layer.options.get("padding", 0)
    r, q = i * s - p, j * s - p
    box = (max(r, 0), max(q, 0), min(r + a["window"].shape[1], H), min(q + a["window"].shape[2], W))
    tiles = []
    for n in range(C):
        tile = render.outline(signed_map(x[n], t, vmax), box, (H, W), width=2)
        if n == c:
            tile = render.outline(tile, (0, 0, H, W), (H, W), color=(255, 120, 0), width=3)
        tiles.append(tile)
    show(render.mosaic(tiles, cols, pad=3, labels=chans),
         f"It came from all {C} maps of {prev.name}; the yellow squares are the window")


def _simple_arithmetic(ctx, stage, prev, k: int, i: int, j: int, right) -> None:
    """Activation or pooling: the source map with the window, and the one-line sum."""
    la = stage.layer
    x = prev.output[k]
    if stage.kind in POOLS:
        size = la.options.get("size", 2)
        s = la.options.get("stride") or size
        r, c = i * s, j * s
        window = x[r:r + size, c:c + size]
        value = float(la(window[None, None])[0, 0, 0, 0])
        word = "largest" if stage.kind == "maxpool" else "average"
        text = f"The {word} of these {window.size} numbers is **{value:.4f}**."
        box = (r, c, r + size, c + size)
        spot = np.unravel_index(int(np.argmax(window)), window.shape) if stage.kind == "maxpool" else None
    else:
        window = x[i:i + 1, j:j + 1]
        value = float(la(window[None, None])[0, 0, 0, 0])
        v = float(window[0, 0])
        text = f"ReLU: max(0, {v:.4f}) = **{value:.4f}**" if stage.kind == "relu" else \
            f"{stage.kind}({v:.4f}) = **{value:.4f}**"
        box = (i, j, i + 1, j + 1)
        spot = None
    with right:
        src = signed_map(x, ctx.px, render.symmetric_limit(prev.output))
        show(render.outline(src, box, x.shape), f"It came from {prev.name}, map {k + 1}")
    cell = 60 if ctx.presentation else 44
    show(render.number_grid(window, render.diverging(window, render.symmetric_limit(prev.output)), cell,
                            highlight=spot))
    ok = np.isclose(value, stage.output[k, i, j], rtol=1e-4, atol=1e-6)
    st.markdown(f"{text}  \n{'✓' if ok else '✗'} The map holds **{float(stage.output[k, i, j]):.4f}**.")
