"""The page "Watch it learn": a small network trains from scratch while the class watches its loss,
its accuracy and its first filters change; then it opens in the walkthrough.

Pictures: the teaching dataset cnnviz draws itself (always there, offline), or a dataset folder
given as `streamlit run app.py -- --data DIR` or in the environment variable CNNVIZ_DATA
(image folders or CIFAR-10 python batches; a random live-sized part of it is used).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

from cnnviz import render
from cnnviz.data import Dataset, DatasetError, load_dataset
from cnnviz.jobs import LEARN_LIMITS, SLOTS
from cnnviz.teaching import LiveConfig, live_plan, teaching_dataset
from cnnviz.ui import describe as D
from cnnviz.ui import training
from cnnviz.ui.common import page_style, plain
from cnnviz.ui.sidebar import restore_widget, save_widget

GENERATED = "Shapes and stripes (drawn by cnnviz)"
TRAIN_PER_CLASS = 500  # of a dataset folder: 5,000 CIFAR-10 pictures, enough to learn something live
TEST_PER_CLASS = 100
LEARNING_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)

INTRO = """
Here a small network starts knowing **nothing**: its filters are random numbers. It then
**practises**: it looks at a handful of pictures, says what it thinks they are, measures how wrong
it was (the **loss**), and nudges every number a little so it would be less wrong next time.
That is one **step**. Watch the loss go down, the accuracy go up, and the first-layer filters
turn from noise into little detectors of edges and colours.
"""


def dataset_folder(argv=None, environ=None) -> Path | None:
    """The folder from `streamlit run app.py -- --data DIR`, else from $CNNVIZ_DATA, else None."""
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument("--data")
    args, _ = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    value = args.data or (os.environ if environ is None else environ).get("CNNVIZ_DATA")
    return Path(value).expanduser() if value else None


@st.cache_resource(show_spinner="Drawing the teaching pictures (once for the whole class)...")
def generated_data() -> tuple[Dataset, Dataset]:
    """2,000 practice and 500 test pictures of five classes; shared by every session (never changed)."""
    return teaching_dataset(400, seed=0), teaching_dataset(100, seed=1)


@st.cache_resource(show_spinner="Reading the pictures (once for the whole class)...", max_entries=2)
def folder_data(path: str) -> tuple[Dataset, Dataset]:
    """A random live-sized part of the folder's train and test pictures; shared, never changed."""
    train = load_dataset(path, "train", per_class=TRAIN_PER_CLASS, seed=0)
    try:
        test = load_dataset(path, "test", per_class=TEST_PER_CLASS, seed=0)
    except DatasetError:  # no test split: keep every fifth practice picture aside instead
        practice = np.arange(len(train)) % 5 != 0
        test = Dataset(train.images[~practice], train.labels[~practice], list(train.classes))
        train = Dataset(train.images[practice], train.labels[practice], list(train.classes))
    if test.classes != train.classes:
        raise DatasetError("the train and test folders name different classes")
    return train, test


def _choose_data(running: bool) -> tuple[str, Dataset, Dataset]:
    folder = dataset_folder()
    options = [GENERATED] + ([f"{folder.name} (the folder {folder})"] if folder else [])
    choice = st.radio("Pictures to learn from", options, key="learn_data", disabled=running,
                      horizontal=True) if folder else GENERATED
    if choice != GENERATED:
        try:
            train, test = folder_data(str(folder))
            return folder.name, train, test
        except (DatasetError, OSError, ValueError) as e:
            st.error(f"We could not read the pictures in {plain(folder, 120)}: {plain(e, 300)}. "
                     "Using the shapes and stripes instead.")
    return "shapes and stripes", *generated_data()


@st.cache_data(show_spinner=False, max_entries=4)
def _preview(name: str, _data: Dataset, per_class: int = 8, size: int = 36) -> bytes:
    """A row of pictures for each class (at most 10 classes), its name on the left."""
    f = render.font(13)
    classes = _data.classes[:10]
    label_w = int(max(f.getlength(c) for c in classes)) + 12
    img = Image.new("RGB", (label_w + per_class * (size + 3), len(classes) * (size + 3)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for k, cls in enumerate(classes):
        y = k * (size + 3)
        d.text((label_w - 8, y + size / 2), cls, fill=(40, 40, 40), font=f, anchor="rm")
        for j, i in enumerate(np.flatnonzero(_data.labels == k)[:per_class]):
            img.paste(render.upscale(_data.images[i], size).resize((size, size)), (label_w + j * (size + 3), y))
    return render.png(img)


def _start(name: str, train: Dataset, test: Dataset) -> None:
    config = LiveConfig(lr=st.session_state["learn_lr"], epochs=st.session_state["learn_passes"])
    plan = live_plan(train, test, config, LEARN_LIMITS.max_steps, name)
    st.session_state["learn_msg"] = training.start_job(plan, LEARN_LIMITS, "learn")


def render_learn() -> None:
    page_style()
    st.title("Watch it learn")
    st.markdown(INTRO)
    if training.show_other_job("learn", "Your own classes are training (on the page *Teach your own "
                                        "classes*). Here is how it goes:"):
        return
    job = training.current_job()
    running = job is not None and job.running
    name, train, test = _choose_data(running)
    left, right = st.columns([3, 2])
    with right:
        st.image(_preview(name, train), caption=f"Some of the {len(train):,} practice pictures "
                 f"({len(train.classes)} classes; {len(test):,} more are kept aside to test it)",
                 output_format="PNG",
                 alt=D.describe_samples(train.classes[:10], "Practice pictures, a row for each class", 8))
    with left:
        steps_per_pass = -(-len(train) // LiveConfig.batch_size)
        restore_widget("learn_passes", LiveConfig.epochs)
        save_widget("learn_passes", st.slider(
            "Passes over the pictures", 1, 10, key="learn_passes", disabled=running,
            help=f"One pass = {steps_per_pass} steps of {LiveConfig.batch_size} pictures. "
                 f"A training stops after {LEARN_LIMITS.max_steps} steps at most."))
        restore_widget("learn_lr", LiveConfig.lr)
        save_widget("learn_lr", st.select_slider(
            "Learning rate: how big each nudge is", LEARNING_RATES, key="learn_lr", disabled=running,
            help="Too small: it learns slowly. Too big: the numbers blow up."))
        st.button("Start training", type="primary", disabled=running, on_click=_start, args=(name, train, test),
                  key="learn_start")
        st.caption(f"Limits, so that everyone gets a turn: at most {LEARN_LIMITS.max_steps} steps and "
                   f"{LEARN_LIMITS.max_seconds:.0f} seconds per training, one training per student, "
                   f"{SLOTS.size} at a time for the whole class. Keep this page open while it trains: "
                   f"closing or leaving it stops the training.")
        if st.session_state.get("learn_msg"):
            st.warning(st.session_state.pop("learn_msg"))
    training.job_section(job, "learn", "a test picture ({cls})", "watch-it-learn.npz")
