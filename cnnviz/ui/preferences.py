"""The page "What each filter looks for": for every map of a conv layer, the picture it likes best (made by
gradient ascent) and the pieces of the sample pictures where it lights up most."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz import explain as E
from cnnviz import layers as L
from cnnviz import render, samples
from cnnviz.ui import pagestart, state
from cnnviz.ui.why import figure

TOP = 4  # patches shown per map
COLS = 4  # maps per row of the grid

INTRO = """
Every filter makes one map, and a map lights up where the picture has what the filter looks for. Two ways
to see what that is: **its favourite picture**, made by starting from plain grey and changing the pixels,
step by step, in whichever direction makes the map brighter (*gradient ascent*, with a little shaking and
blurring so that it looks like something); and **the pieces of the sample pictures where it lit up most**,
each as big as the patch of picture one number of the map can see (its *receptive field*).
"""


def conv_stages(model) -> list[tuple[str, str]]:
    """(conv layer name, stage to look at) for every conv layer: the activation right after it when there
    is one (what the next layer reads), else the conv's own output."""
    layers, out = model.layers, []
    for n, la in enumerate(layers):
        if la.kind == "conv":
            after = layers[n + 1] if n + 1 < len(layers) and L.KINDS[layers[n + 1].kind].elementwise else la
            out.append((la.name, after.name))
    return out


def field_size(model, stage: str) -> tuple[int, int]:
    """How many picture pixels (rows, columns) one number of `stage`'s maps sees, away from the edges."""
    below = model.layers[:[la.name for la in model.layers].index(stage) + 1]
    top, left, bottom, right = L.receptive_field(below, 0, 0)
    return bottom - top, right - left


def layer_words(position: int, size: tuple[int, int]) -> str:
    """What this layer's favourite pictures look like, in plain words (position 0 is the first conv layer)."""
    h, w = size
    if position == 0:
        return (f"**The first layer** sees only {h}x{w} pixels at a time, so its filters like the simplest "
                "things: a plain colour, or an edge where light meets dark at one angle. Its favourite "
                "pictures are flat colours and stripes.")
    return (f"**A deeper layer** combines all the maps of the layer before, and each of its numbers sees "
            f"{h}x{w} pixels. So its filters like **textures** and bigger **parts**: stripes of two colours, "
            "grids, dots, blobs like an eye or a patch of fur. The deeper the layer, the busier its favourite "
            "pictures.")


def sample_pictures() -> dict:
    return {name: state.sample_picture(name) for name in samples.sample_names()}


@st.cache_data(show_spinner=False, max_entries=24)
def layer_looks(model_key: str, stage: str, names: tuple, _model, _pictures) -> tuple[np.ndarray, list]:
    """(favourite pictures uint8 (F, h, w, 3), [top patches of each map]) for one stage, worked out once per
    network (model_key: the weights' content), whichever session asks."""
    prefs = E.preferences(_model, stage)
    patches = E.layer_top_patches(_model, stage, _pictures, TOP)
    return prefs, patches


def tile(pref: np.ndarray, patches: list, size: int = 112) -> Image.Image:
    """One map's tile: its favourite picture, and beside it its top patches in a 2x2 block."""
    big = render.upscale(pref, size)
    half = (size - 4) // 2
    thumbs = [render.upscale(p.pixels, half).resize((half, half), Image.Resampling.NEAREST)
              for p in patches]
    block = render.mosaic(thumbs, cols=2, pad=2) if thumbs else Image.new("RGB", (half, half), "white")
    return render.mosaic([big, block.resize((size, size), Image.Resampling.NEAREST)], cols=2, pad=4)


def tile_caption(f: int, patches: list) -> str:
    if not patches:
        return f"Map {f + 1}: no sample pictures to compare"
    where = ", ".join(f"{p.picture} ({p.value:.2f})" for p in patches)
    return f"Map {f + 1}: favourite picture, then where it lit up most: {where}"


def render_preferences() -> None:
    presentation = pagestart.start()
    st.title("What each filter looks for")
    st.markdown(INTRO)
    model = state.session_model()
    stages = conv_stages(model)
    names = [c for c, _ in stages]
    conv = st.selectbox("Layer", names, key="pref_layer",
                        format_func=lambda n: f"{n} ({'first layer' if n == names[0] else 'deeper'}, "
                                              f"{model.layer(n).params['weight'].shape[0]} filters)")
    position = names.index(conv)
    stage = stages[position][1]
    st.markdown(layer_words(position, field_size(model, stage)))
    if state.has_edits() or state.own_model_label() is not None:
        st.caption("This is your own network" + (" with your edits" if state.has_edits() else "")
                   + ", so its pictures are worked out for it alone.")
    pictures = sample_pictures()
    with st.spinner("Working out what each filter of this layer looks for (a few seconds, once per network)"):
        prefs, patches = layer_looks(E.model_key(model), stage, tuple(pictures), model, pictures)
    after = "" if stage == conv else f" after {L.KINDS[model.layer(stage).kind].title}"
    st.caption(f"Each tile: the map's favourite picture (left, {prefs.shape[2]}x{prefs.shape[1]} pixels) and the "
               f"{TOP} sample pieces where it lit up most (right), with how bright the map was there{after}.")
    size = 144 if presentation else 112
    for row in range(0, len(prefs), COLS):
        cols = st.columns(COLS)
        for f, col in zip(range(row, min(row + COLS, len(prefs))), cols):
            with col:
                figure(tile(prefs[f], patches[f], size), tile_caption(f, patches[f]))
