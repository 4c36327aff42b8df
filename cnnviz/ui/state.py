"""This session's picture, model and step; the shared default model. The only place that reads
or writes st.session_state and st.query_params for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from cnnviz import samples
from cnnviz.images import ImageError, fit_to_input, load_image
from cnnviz.layers import ACTIVATIONS
from cnnviz.model import Model, Stage, load_model, trace

STEPS = ("Pixels", "Convolution", "ReLU", "Max pooling", "Deeper layers", "Fully connected", "Softmax", "Why?")
DEFAULT_SAMPLE = "cat-chelsea"


@dataclass
class Context:
    """What every step view gets: this session's model, its trace on the picture, display choices."""

    model: Model
    stages: list[Stage]
    picture: np.ndarray  # uint8 (H, W, 3), as loaded
    small: np.ndarray  # uint8 (h, w, 3): the picture cropped and resized to the model's input
    picture_name: str
    presentation: bool
    edited: bool  # this session's model differs from the network it walks through (a filter or activation swap)
    trained_activation: str = "relu"  # what the network was trained with, before any swap

    def stage(self, name: str) -> Stage:
        return self.stages[self.index(name)]

    def index(self, name: str) -> int:
        """Where the stage called `name` is in the trace (0 is the input)."""
        return next(k for k, s in enumerate(self.stages) if s.name == name)

    @property
    def probabilities(self) -> np.ndarray:
        return self.stages[-1].output

    @property
    def px(self) -> int:
        """Base width in pixels for one map; bigger in presentation mode."""
        return 288 if self.presentation else 224


@st.cache_resource(show_spinner=False)
def default_model() -> Model:
    """The shipped model, loaded once per server and shared by every session (its arrays are read-only)."""
    return load_model()


@st.cache_data(show_spinner=False, max_entries=32)
def sample_picture(name: str) -> np.ndarray:
    return load_image(samples.sample_path(name))


def base_model() -> Model:
    """This session's network before edits: its own (trained or uploaded) one, else the shipped default."""
    return st.session_state.get("own_model") or default_model()


def own_model_label() -> str | None:
    """What to call this session's own network, or None while it uses the shipped one."""
    return st.session_state.get("own_model_label") if "own_model" in st.session_state else None


def use_model(model: Model | None, label: str = "") -> None:
    """Walk through `model` from now on (None: back to the shipped one); edits start afresh."""
    if model is None:
        st.session_state.pop("own_model", None)
        st.session_state.pop("own_model_label", None)
    else:
        st.session_state["own_model"] = model
        st.session_state["own_model_label"] = label
    reset_edits()
    st.session_state["step"] = 1


def trained_activation(model: Model) -> str:
    """The activation `model` was trained with (its first one); "relu" if it has none."""
    return next((la.kind for la in model.layers if la.kind in ACTIVATIONS), "relu")


def session_model() -> Model:
    """This session's network with its edits: replaced conv1 filters and a swapped activation."""
    m = base_model()
    for (layer, index), (kernel, bias) in st.session_state.get("edits", {}).items():
        m = m.with_filter(layer, index, np.asarray(kernel, np.float32), bias)
    act = st.session_state.get("activation")
    return m if act in (None, trained_activation(m)) else m.with_activation(act)


def has_edits() -> bool:
    """Whether this session changed its network: a filter put in, or another activation."""
    act = st.session_state.get("activation")
    return bool(st.session_state.get("edits")) or act not in (None, trained_activation(base_model()))


def set_filter(layer: str, index: int, kernel: np.ndarray, bias: float) -> None:
    edits = dict(st.session_state.get("edits", {}))
    edits[(layer, index)] = (np.array(kernel, np.float32), float(bias))
    st.session_state["edits"] = edits


def reset_edits() -> None:
    """Back to the network as trained: no replaced filters, its own activation."""
    st.session_state["edits"] = {}
    st.session_state["activation"] = trained_activation(base_model())


# ---------------------------------------------------------------- URL state


def _query_int(key: str, lo: int, hi: int, default: int) -> int:
    try:
        v = int(str(st.query_params.get(key, default))[:6])
    except ValueError:
        return default
    return v if lo <= v <= hi else default


def init_from_url() -> None:
    """On a session's first run, take the step and sample from the link; bad values fall back quietly."""
    if "step" in st.session_state:
        return
    st.session_state["step"] = _query_int("step", 1, len(STEPS), 1)
    name = str(st.query_params.get("sample", DEFAULT_SAMPLE))[:64]
    st.session_state["sample"] = name if samples.sample_path(name) else DEFAULT_SAMPLE
    st.session_state["source"] = "sample"


def write_url() -> None:
    """Keep the link in the address bar pointing at this exact step and picture."""
    params = {"step": str(st.session_state["step"])}
    if st.session_state.get("source") == "sample":
        params["sample"] = st.session_state["sample"]
    current = {k: st.query_params.get_all(k) for k in st.query_params}  # repeated keys hold several
    if current != {k: [v] for k, v in params.items()}:
        st.query_params.from_dict(params)


def go(delta: int) -> None:
    st.session_state["step"] = min(len(STEPS), max(1, st.session_state["step"] + delta))


# ---------------------------------------------------------------- the picture


def accept_upload(data, label: str) -> str | None:
    """Decode an uploaded or webcam picture into this session; returns an error message or None.

    On error the previous picture stays in use.
    """
    try:
        picture = load_image(data)
    except ImageError as e:
        return str(e)
    st.session_state["upload"] = picture
    st.session_state["upload_name"] = label
    st.session_state["source"] = "upload"
    return None


def current_picture() -> tuple[str, np.ndarray]:
    if st.session_state.get("source") == "upload" and "upload" in st.session_state:
        return st.session_state["upload_name"], st.session_state["upload"]
    name = st.session_state.get("sample", DEFAULT_SAMPLE)
    return name, sample_picture(name)


def build_context(presentation: bool) -> Context:
    model, base = session_model(), base_model()
    name, picture = current_picture()
    return Context(model, trace(model, picture), picture, fit_to_input(picture, model.input_size), name,
                   presentation, model is not base, trained_activation(base))
