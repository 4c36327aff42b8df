"""The page "Two pictures side by side": both pictures walk through every stage, and each stage shows where
their numbers differ."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz import layers as L
from cnnviz import render
from cnnviz.images import fit_to_input
from cnnviz.model import trace
from cnnviz.ui import pagestart, state
from cnnviz.ui.common import fmt_prob
from cnnviz.ui.why import figure

INTRO = """
Pick two pictures and follow both through the network at once. At every stage you see picture A's numbers,
picture B's, and **A minus B**: red where A's number is bigger, blue where B's is, white where they agree.
Each stage also says **how different** the two are: the average difference as a share of the average size
of the numbers (0% the same). Watch whether the differences grow or shrink on the way to the answer.
"""

def apart(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two arrays are: mean |a - b| over the mean of |a| and |b| (0 the same, 1 as big as them)."""
    scale = (np.abs(a).mean() + np.abs(b).mean()) / 2
    return float(np.abs(a - b).mean() / scale) if scale > 0 else 0.0


def _maps(a: np.ndarray, vmax: float | None, px: int) -> Image.Image:
    """All maps (C, H, W) of a stage, small, on one colour scale, numbered from 1."""
    cols = int(np.ceil(np.sqrt(len(a))))
    cell = max(16, px // cols - 4)
    return render.mosaic([render.upscale(render.diverging(m, vmax), cell) for m in a], cols=cols, pad=2)


def stage_row(kind: str, a: np.ndarray, b: np.ndarray, small_a, small_b, classes, px: int):
    """Three pictures for one stage (A, B, A minus B) and what each shows -> [(PIL image, caption)].

    Maps share one colour scale between A and B, so equal colours are equal numbers; the difference has its own.
    """
    wide = px + 140  # charts need room for class names
    if kind == "input":
        diff = small_a.astype(np.int16) - small_b.astype(np.int16)
        d = render.diverging(diff.mean(axis=2))
        return [(render.upscale(small_a, px), "A as the network sees it"),
                (render.upscale(small_b, px), "B as the network sees it"),
                (render.upscale(d, px), "A minus B, averaged over the colours")]
    if a.ndim == 3:
        vmax = render.symmetric_limit(np.stack([a, b]))
        return [(_maps(a, vmax, px), f"A: its {len(a)} maps"), (_maps(b, vmax, px), f"B: its {len(b)} maps"),
                (_maps(a - b, render.symmetric_limit(a - b), px), "A minus B, map by map")]
    if kind == "softmax":
        return [(render.bar_chart(list(classes), a, int(np.argmax(a)), width=wide, bar_h=18), "A's chances"),
                (render.bar_chart(list(classes), b, int(np.argmax(b)), width=wide, bar_h=18), "B's chances"),
                (render.signed_bar_chart(list(classes), a - b, width=wide, bar_h=18, fmt="{:+.0%}", label_w=90),
                 "A minus B, class by class")]
    if len(a) <= 100:
        scores = len(a) == len(classes)
        labels = list(classes) if scores else [str(k + 1) for k in range(len(a))]
        what = "scores" if scores else "numbers"
        return [(render.signed_bar_chart(labels, v, width=wide, bar_h=18, label_w=90), cap)
                for v, cap in ((a, f"A's {what}"), (b, f"B's {what}"), (a - b, "A minus B"))]
    cols = 32
    rows = -(-len(a) // cols)

    def block(v, vmax):
        grid = np.zeros(rows * cols, np.float32)
        grid[:len(v)] = v
        return render.upscale(render.diverging(grid.reshape(rows, cols), vmax), px)
    vmax = render.symmetric_limit(np.stack([a, b]))
    return [(block(a, vmax), f"A: {len(a):,} numbers, 32 a row"), (block(b, vmax), f"B: {len(b):,} numbers"),
            (block(a - b, None), "A minus B")]


def render_compare() -> None:
    presentation = pagestart.start()
    st.title("Two pictures side by side")
    st.markdown(INTRO)
    model = state.session_model()
    names = pagestart.choices()
    a_col, b_col = st.columns(2)
    a = pagestart.pick("Picture A", "cmp_a", container=a_col)
    b = pagestart.pick("Picture B", "cmp_b", names[(names.index(a) + 1) % len(names)], b_col)
    pa, pb = pagestart.picture_of(a), pagestart.picture_of(b)
    ta, tb = trace(model, pa), trace(model, pb)
    small_a, small_b = fit_to_input(pa, model.input_size), fit_to_input(pb, model.input_size)
    classes = model.classes
    ka, kb = int(np.argmax(ta[-1].output)), int(np.argmax(tb[-1].output))
    st.info(f"A: **{classes[ka]}** ({fmt_prob(ta[-1].output[ka])}) · B: **{classes[kb]}** "
            f"({fmt_prob(tb[-1].output[kb])})")
    px = 320 if presentation else 260
    for n, (sa, sb) in enumerate(zip(ta, tb)):
        title = "the picture" if sa.kind == "input" else f"{sa.name} ({L.KINDS[sa.kind].title})"
        st.markdown(f"**{n + 1}. {title}**: how different: {apart(sa.output, sb.output):.0%}")
        if sa.kind == "flatten":
            st.caption("The same numbers as the stage before, laid out in one list.")
            continue
        for col, (img, caption) in zip(st.columns(3), stage_row(sa.kind, sa.output, sb.output, small_a, small_b,
                                                                classes, px)):
            with col:
                figure(img, caption)
