"""Step 6, fully connected: the last maps become one long list of numbers, and every class score is a
weighted sum of that whole list plus a bias."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz import layers as L
from cnnviz import render
from cnnviz.ui import describe as D
from cnnviz.ui.common import show, signed_map

INTRO = """
Now the network has to decide. It **flattens** the last maps: it reads them like a book, row after row,
map after map, into one long list of numbers. Then every class gets a **score**: each number in the list is
multiplied by its own weight, and all the products are added up, plus a bias. A red weight says "a big number
here is evidence *for* this class", a blue weight says "evidence *against*".
"""

TOP_BARS = 10  # maps in the contribution chart
TOP_MAPS = 4  # maps drawn next to their weights


def _parts(ctx):
    """(maps stage or None, vector stage, dense stage): what flows into the first dense layer."""
    d = next(i for i, s in enumerate(ctx.stages) if s.kind == "dense")
    vec = ctx.stages[d - 1]
    maps = ctx.stages[d - 2] if vec.kind == "flatten" and ctx.stages[d - 2].output.ndim == 3 else None
    return maps, vec, ctx.stages[d]


def render_dense(ctx) -> None:
    """Draw step 6: flattening, then one class's score taken apart (a fragment)."""
    maps, vec, dense = _parts(ctx)
    st.markdown(INTRO)
    if maps is not None:
        _flatten(ctx, maps, vec)
    _class_score(ctx, maps, vec, dense)


# ---------------------------------------------------------------- flatten


def _flatten(ctx, maps, vec) -> None:
    C, H, W = maps.output.shape
    n = vec.output.size
    st.subheader("1. Flatten: from maps to one long list")
    st.markdown(f"The last stage, **{maps.name}**, has {C} maps of {H}x{W}. "
                f"Laid end to end they make a list of **{C} × {H} × {W} = {n:,}** numbers.")
    vmax = render.symmetric_limit(maps.output)
    cell = 24 if ctx.presentation else 16
    first = maps.output[0]
    show(render.unrolled_map(first, vmax, cell), f"Map 1 of {maps.name}, unrolled row by row",
         D.describe_map(first, f"Map 1 of {maps.name}") + f"; next to it the same {first.size} numbers in one "
         f"line, row 1 first, then row 2, up to row {H}",
         D.numbers_table(first, f"Map 1 of {maps.name}; the list reads it row by row"))
    flat = L.flatten(maps.output[None])[0]  # (C*H*W,)
    same = np.array_equal(flat, vec.output)
    show(render.flattened_maps(maps.output, 10 if ctx.presentation else 8),
         f"All {n:,} numbers: each line is one map; the list goes on line after line."
         + (" ✓ Same as the flatten layer's output" if same else " ✗ Differs from the flatten layer's output"),
         f"All {C} maps of {maps.name} as {C} lines of {H * W} coloured cells, one line per map, each map read "
         f"row by row: {n:,} numbers from {flat.min():.2f} to {flat.max():.2f}, "
         f"{int(np.sum(flat == 0)):,} of them exactly 0 (white)")
    zeros = int(np.sum(vec.output == 0))
    if zeros:
        st.caption(f"{zeros:,} of the {n:,} numbers are exactly 0 (white): those parts of the picture did not "
                   "light up, so they add nothing to any score.")


# ---------------------------------------------------------------- one class's score


def class_score(vec, dense, k: int, maps=None) -> dict:
    """The score of class k taken apart: products (in,), their sum, bias, total (layers.dense),
    the dense stage's own value and, when the vector came from maps (C, H, W), each map's part (C,)."""
    w, b = dense.layer.params["weight"], dense.layer.params.get("bias")
    x = vec.output
    products = w[k].astype(np.float64) * x  # (in,)
    bias = float(b[k]) if b is not None else 0.0
    total = float(L.dense(x[None], w[k:k + 1], None if b is None else b[k:k + 1])[0, 0])
    out = {"weights": w[k], "products": products, "sum": float(products.sum()), "bias": bias, "total": total,
           "value": float(dense.output[k])}
    if maps is not None:
        out["per_map"] = products.reshape(maps.output.shape).sum(axis=(1, 2))  # (C,)
    return out


@st.fragment
def _class_score(ctx, maps, vec, dense) -> None:
    classes = ctx.model.classes
    top = int(np.argmax(dense.output))
    st.subheader("2. Weigh everything up: one score per class")
    k = st.selectbox("Class", range(len(classes)), index=top, format_func=lambda c: classes[c],
                     key=f"fc_class_{top}")
    a = class_score(vec, dense, k, maps)
    x, w, n = vec.output, a["weights"], vec.output.size
    terms = " + ".join(f"({w[t]:.3f} × {x[t]:.3f})" for t in range(min(3, n)))
    label = "".join("\\" + ch if ch in "_&%$#{}" else ch for ch in classes[k])  # TeX-safe
    st.latex(rf"\text{{score}}(\text{{{label}}}) = w_0 x_0 + w_1 x_1 + \dots + w_{{{n - 1}}} x_{{{n - 1}}} + b")
    st.markdown(f"Here: {terms} + … ({n:,} products in all) + bias. Each *x* is one number of the list, "
                f"each *w* is the weight that **{classes[k]}** gives to it.")
    ok = np.isclose(a["total"], a["value"], rtol=1e-4, atol=1e-5)
    st.markdown(f"Sum of the {n:,} products **{a['sum']:.4f}** + bias **{a['bias']:+.4f}** "
                f"= score for {classes[k]} **{a['total']:.4f}**")
    st.markdown(f"{'✓' if ok else '✗'} The dense layer's output for **{classes[k]}** is **{a['value']:.4f}**, "
                "the same number.")
    if maps is not None:
        _per_map(ctx, maps, a, classes[k])


def _per_map(ctx, maps, a: dict, name: str) -> None:
    C, H, W = maps.output.shape
    per_map = a["per_map"]
    st.subheader(f"3. Which maps pushed the score for {name}?")
    st.markdown(f"Each map's part of the score is the sum of its {H * W} products (its numbers times their "
                f"weights). Red bars push the score for **{name}** up, blue bars push it down. "
                f"The {C} parts plus the bias add up to the score: "
                f"{per_map.sum():.4f} {a['bias']:+.4f} = {per_map.sum() + a['bias']:.4f}.")
    order = np.argsort(-np.abs(per_map))[:TOP_BARS]
    order = order[np.argsort(-per_map[order])]  # the strongest maps, biggest push first
    width = 760 if ctx.presentation else 560
    bar_h = 28 if ctx.presentation else 20
    names = [f"map {c + 1}" for c in order]
    caption = f"The {len(order)} maps with the biggest parts (of {C})"
    show(render.signed_bar_chart(names, per_map[order], width=width, bar_h=bar_h, fmt="{:+.3f}", label_w=90),
         caption, D.describe_bars(names, per_map[order], f"Bars, red to the right and blue to the left of 0: each "
                                  f"map's part of the score for {name}", "{:+.3f}"),
         D.list_table(names, per_map[order], f"{caption}: each map's part of the score for {name}", "{:+.3f}",
                      ("map", "part of the score")))
    st.markdown(f"**The {TOP_MAPS} maps that helped {name} most**, each next to {name}'s weights for it "
                "and their products (which add up to the bar above).")
    weights = a["weights"].reshape(C, H, W)
    products = a["products"].reshape(C, H, W)
    vm, vw, vp = (render.symmetric_limit(v) for v in (maps.output, weights, products))
    px = W * (18 if ctx.presentation else 13)  # three side by side must fit half the page
    helpers = [c for c in np.argsort(-per_map) if per_map[c] > 0][:TOP_MAPS]
    cols = st.columns(2)
    for slot, c in enumerate(helpers):
        pictures = [signed_map(maps.output[c], px, vm), signed_map(weights[c], px, vw),
                    signed_map(products[c], px, vp)]
        words = D.describe_equation([f"map {c + 1} of {maps.name} ({H} by {W})", f"{name}'s {H * W} weights for it",
                                     f"{H * W} products that add up to {per_map[c]:+.3f}"])
        with cols[slot % 2]:
            show(render.equation(pictures, ["×", "="], labels=[f"map {c + 1}", f"weights for {name}",
                                                                f"sum {per_map[c]:+.3f}"], gap=36,
                                 font_size=32 if ctx.presentation else 24),
                 alt=f"{words}, each drawn in colours: red positive, blue negative")
    if not helpers:
        st.caption(f"No map pushed the score for {name} up.")
