"""The page "Your own model file": upload a network saved by cnnviz, see what is inside, walk through it.

The file comes from a student's computer, so it is read by `model.load_model` (which trusts
nothing in it) and checked against the layout the walkthrough can show. A refused file gives
one message and changes nothing else: this session's network, edits and picture stay.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz.model import DEFAULT_MODEL_PATH, Model, ModelError, load_model, trace
from cnnviz.ui import pages, state
from cnnviz.ui.common import page_style, plain
from cnnviz.ui.walkable import check_walkable

MAX_MB = 5  # a Tiny-VGG file is well under 1 MB

INTRO = """
Trained a network yourself? `python -m cnnviz.train --data FOLDER --out my_model.npz` saves it as one
**.npz file**. Upload that file here to see what is inside, then walk through it step by step, exactly
like the network that comes with this app.
"""


def read_model_file(data: bytes, name: str) -> tuple[Model, str]:
    """An uploaded file's bytes -> (model, label), or ModelError saying in plain words why not.

    Beyond load_model's checks: the walkthrough must be able to show it, and its numbers must stay
    finite on black, white and noisy pictures.
    """
    if len(data) > MAX_MB * 2**20:
        raise ModelError(f"it is {len(data) / 2**20:.1f} MB; model files up to {MAX_MB} MB work")
    model = load_model(data)
    check_walkable(model)
    h, w = model.input_size
    tests = [np.zeros((h, w, 3), np.uint8), np.full((h, w, 3), 255, np.uint8),
             np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)]
    with np.errstate(all="ignore"):
        for picture in tests:
            if not all(np.all(np.isfinite(s.output)) for s in trace(model, picture)):
                raise ModelError("its numbers grow too big to compute (they overflow) on a test picture")
    return model, label_for(name)


def label_for(file_name: str) -> str:
    """A file name as a short, plain label (it is shown in markdown on the walkthrough)."""
    stem = re.sub(r"\.npz$", "", str(file_name), flags=re.IGNORECASE)
    return " ".join(re.sub(r"[^\w.-]+", " ", stem).split()).strip("._ ")[:40] or "uploaded model"


def _read_new_upload(file) -> None:
    """Read a newly chosen file once (by its id) into this session's page state; clear it when removed."""
    if file is None:
        for key in ("mf_file_id", "mf_model", "mf_error"):
            st.session_state.pop(key, None)
        return
    if file.file_id == st.session_state.get("mf_file_id"):
        return
    st.session_state["mf_file_id"] = file.file_id
    st.session_state.pop("mf_model", None)
    st.session_state.pop("mf_error", None)
    try:
        if file.size > MAX_MB * 2**20:  # refused before reading it
            raise ModelError(f"it is {file.size / 2**20:.1f} MB; model files up to {MAX_MB} MB work")
        st.session_state["mf_model"] = read_model_file(file.getvalue(), file.name)
    except ModelError as e:
        st.session_state["mf_error"] = str(e)


def render_modelfile() -> None:
    page_style()
    st.title("Your own model file")
    st.markdown(INTRO)
    _current()
    f = st.file_uploader("Your model file (.npz)", type=["npz"], key="mf_upload", max_upload_size=MAX_MB)
    _read_new_upload(f)
    if st.session_state.get("mf_error"):
        st.error(f"We cannot use this file: {plain(st.session_state['mf_error'], 400)}.  \n"
                 "Nothing has changed: you still walk through the same network as before.")
    elif "mf_model" in st.session_state:
        model, label = st.session_state["mf_model"]
        _describe(model, label)
        if st.button("Walk through this network", key="mf_use", type="primary"):
            state.use_model(model, label)
            st.switch_page(pages.walkthrough_page())
    st.divider()
    st.markdown("**An example file:** the network that comes with this app, saved the same way.")
    st.download_button("Download the app's model file", _shipped_bytes(), file_name=DEFAULT_MODEL_PATH.name,
                       mime="application/octet-stream", key="mf_download", on_click="ignore")


@st.cache_resource(show_spinner=False)
def _shipped_bytes() -> bytes:
    return DEFAULT_MODEL_PATH.read_bytes()


def _current() -> None:
    label = state.own_model_label()
    if label is None:
        st.caption("Right now the walkthrough shows the network that comes with this app.")
    else:
        st.caption(f"Right now the walkthrough shows your own network: {plain(label)}.")
        st.button("Back to the app's network", key="mf_back", on_click=state.use_model, args=(None,))


def layer_table(model: Model) -> pd.DataFrame:
    """One row per layer: name, kind, parameter shapes and the shape of what it makes from one picture."""
    stages = trace(model, np.zeros((*model.input_size, 3), np.uint8))[1:]
    return pd.DataFrame({
        "layer": [s.name for s in stages],
        "kind": [s.kind for s in stages],
        "parameters": [", ".join(f"{k} {'x'.join(map(str, v.shape))}" for k, v in s.layer.params.items()) or "-"
                       for s in stages],
        "output for one picture": ["x".join(map(str, s.output.shape)) for s in stages],
    })


def _describe(model: Model, label: str) -> None:
    n_params = sum(v.size for la in model.layers for v in la.params.values())
    meta = model.meta
    acc = meta.get("test_accuracy")
    st.success(f"**{plain(label)}** is a network cnnviz can walk through.")
    lines = [
        f"- **Classes ({len(model.classes)}):** {', '.join(plain(c, 40) for c in model.classes)}",
        f"- **Input:** {model.input_size[1]}x{model.input_size[0]} pixels, 3 colours",
        f"- **Trained on:** {plain(meta.get('dataset', 'not recorded'))}",
        f"- **Test accuracy:** {acc:.1%}" if acc is not None else "- **Test accuracy:** not recorded",
        f"- **Weights:** {n_params:,} numbers in {len(model.layers)} layers",
    ]
    st.markdown("\n".join(lines))
    st.dataframe(layer_table(model), hide_index=True, key="mf_layers")
