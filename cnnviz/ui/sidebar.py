"""The sidebar: pick a picture (samples, upload, webcam), presentation mode, the model's facts."""

from __future__ import annotations

import streamlit as st

from cnnviz import render, samples
from cnnviz.images import MAX_BYTES
from cnnviz.ui import describe as D
from cnnviz.ui import state
from cnnviz.ui.common import plain, preview

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]


@st.cache_data(show_spinner=False)
def _gallery(names: tuple) -> bytes:
    thumbs = [render.upscale(state.sample_picture(n)[:, :, :3], 64).resize((64, 64)) for n in names]
    return render.png(render.mosaic(thumbs, cols=4, labels=[n[:12] for n in names], label_size=10))


def _pick_sample() -> None:
    names = samples.sample_names()
    st.image(_gallery(tuple(names)), width="stretch", output_format="PNG",  # "auto" re-encodes it as JPEG
             alt=D.describe_samples(names, "The sample pictures, to choose from in the list below"))
    current = st.session_state.get("sample", state.DEFAULT_SAMPLE)
    choice = st.selectbox("Sample picture", names, index=names.index(current) if current in names else 0,
                          key="sample_choice")
    if choice != current or st.session_state.get("source") != "sample":
        st.session_state["sample"] = choice
        st.session_state["source"] = "sample"


def _accept_file(file, label: str) -> None:
    """Decode a new upload or photo once (by its id); show a message if it is not a usable picture."""
    if file is None:
        return
    if file.file_id == st.session_state.get("last_file_id"):
        if st.session_state.get("last_file_error"):
            st.error(st.session_state["last_file_error"])
        return
    st.session_state["last_file_id"] = file.file_id
    if file.size > MAX_BYTES:
        error = f"This file is {file.size / 1e6:.1f} MB; pictures up to {MAX_BYTES / 1e6:.0f} MB work."
    else:
        error = state.accept_upload(file.getvalue(), label)
    st.session_state["last_file_error"] = error
    if error:
        st.error(error)


def restore_widget(key: str, default) -> None:
    """Give widget `key` its saved value (`default` before any) if Streamlit has dropped it.

    Streamlit forgets a widget's value on any run that does not draw it (a visit to another page),
    which would put an uploaded picture back to the sample, or a training page's settings back to
    their defaults. Draw the widget with `key` after this, and pass its value to `save_widget`.
    """
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"_saved_{key}", default)


def save_widget(key: str, value):
    """Save widget `key`'s value for `restore_widget`; returns `value`."""
    st.session_state[f"_saved_{key}"] = value
    return value


def set_widget(key: str, value) -> None:
    """Set widget `key` and its saved value, from a callback (before the widget is drawn)."""
    st.session_state[key] = save_widget(key, value)


def open_on_upload() -> None:
    """Show "Upload" the next time the sidebar draws: another page has put a picture in
    (state.accept_upload), which the Samples choice would replace by the sample."""
    st.session_state.pop("picture_source", None)
    save_widget("picture_source", "Upload")


def render_sidebar() -> bool:
    """Draw the sidebar; returns whether presentation mode is on."""
    with st.sidebar:
        st.title("cnnviz")
        st.caption("How a convolutional neural network sees a picture, step by step.")
        restore_widget("presentation", False)
        presentation = save_widget("presentation", st.toggle(
            "Presentation mode", key="presentation",
            help="Bigger text and pictures, fewer controls: for projecting in class."))
        restore_widget("picture_source", "Samples")
        source = save_widget("picture_source", st.segmented_control(
            "Picture", ["Samples", "Upload", "Webcam"], key="picture_source", required=True))
        if source == "Samples":
            _pick_sample()
        elif source == "Upload":
            f = st.file_uploader("Your picture", type=UPLOAD_TYPES, key="uploader")
            _accept_file(f, f.name if f else "")
        else:
            f = st.camera_input("Take a photo", key="camera")
            _accept_file(f, "webcam photo")
        name, picture = state.current_picture()
        st.image(preview(picture, 320, 320), caption=f"Now showing: {plain(name, 60)}", width="content",
                 output_format="PNG" if max(picture.shape[:2]) < 320 else "JPEG",  # crisp small ones, light photos
                 alt=D.describe_picture(picture, f"The picture in use ({str(name)[:60]})"))
        if not presentation:
            _model_facts()
    return presentation


def _model_facts() -> None:
    m = state.base_model()
    with st.expander("About this network"):
        if state.own_model_label() is not None:
            st.markdown(f"**Your own network: {plain(state.own_model_label())}**")
            st.button("Back to the shipped network", on_click=state.use_model, args=(None,))
        acc = m.meta.get("test_accuracy")
        st.markdown(
            f"- Classes: {', '.join(m.classes)}\n"
            f"- Input: {m.input_size[0]}x{m.input_size[1]} pixels, 3 colours\n"
            f"- Trained on: {plain(m.meta.get('dataset', '?'))} ({plain(m.meta.get('train_images', '?'))} "
            f"pictures, {plain(m.meta.get('epochs', '?'))} passes)\n"  # meta may come from an uploaded file
            + (f"- Right on {acc:.1%} of {plain(m.meta.get('test_images', '?'))} test pictures it never saw\n"
               if acc else ""))
        if state.has_edits():
            st.button("Undo all my changes to the network", on_click=state.reset_edits)
