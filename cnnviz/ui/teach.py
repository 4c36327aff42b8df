"""The page "Teach your own classes": a student names 2 to 5 classes, gives each at least 5 pictures
(upload or webcam), and trains a network on them in well under a minute, starting from the
shipped network's filters (transfer learning). Then the walkthrough shows that network on their
own pictures, and the network can be downloaded.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import streamlit as st

from cnnviz import render
from cnnviz.images import ImageError, fit_to_input, load_image
from cnnviz.jobs import SLOTS, TEACH_LIMITS
from cnnviz.model import forward
from cnnviz.teaching import TeachConfig, draw, teach_plan
from cnnviz.ui import describe as D
from cnnviz.ui import state, training
from cnnviz.ui.common import page_script, plain, show
from cnnviz.ui.sidebar import UPLOAD_TYPES, restore_widget, save_widget, set_widget

MIN_CLASSES, MAX_CLASSES = 2, 5
MIN_PICTURES, MAX_PICTURES = 5, 30  # per class; the cap bounds one student's memory and training time
NAME_LENGTH = 20
NAME_PATTERN = re.compile(r"^[^\W_](?:[^\W_]|[ '-])*$")  # letters and digits (any script), spaces, - and '
THUMB = 64  # pixels: what is kept of each picture besides the model's 32x32
EXAMPLES = {"stripes": "vertical stripes", "circles": "circles", "checkerboards": "checkerboards"}

INTRO = f"""
Teach a network **your own classes**: name them, give each one at least {MIN_PICTURES} pictures
(upload them or take them with the webcam), and press **Train**.
The network does not start from nothing: it reuses the filters of the network that comes with this
app (**transfer learning**), which already detect edges, colours and textures. Only its last layers
learn your classes, so a few dozen pictures and well under a minute are enough. Some of your pictures
are kept aside to test it fairly afterwards.
"""

_ids = itertools.count()


@dataclass(frozen=True)
class Picture:
    """One of a student's pictures: what the network sees (32x32) and a thumbnail to show."""

    id: int
    small: np.ndarray  # uint8 (32, 32, 3)
    thumb: np.ndarray  # uint8 (THUMB, THUMB, 3), centre-cropped


def make_picture(image: np.ndarray) -> Picture:
    return Picture(next(_ids), fit_to_input(image, (32, 32)), fit_to_input(image, (THUMB, THUMB)))


def pictures() -> dict:
    """Slot number -> that class's list of Pictures (slots keep their pictures when renamed)."""
    return st.session_state.setdefault("teach_pics", {})


def check_names(names: list[str]) -> list[str]:
    """What is wrong with the class names, in words (empty when they are fine)."""
    problems = []
    for k, n in enumerate(names, start=1):
        if not n:
            problems.append(f"Class {k} needs a name.")
        elif len(n) > NAME_LENGTH:
            problems.append(f"Class {k}'s name is too long (at most {NAME_LENGTH} characters).")
        elif not NAME_PATTERN.match(n):
            problems.append(f"Class {k}'s name may only use letters, digits, spaces, - and '.")
    lowered = [n.lower() for n in names if n]
    if len(set(lowered)) < len(lowered):
        problems.append("Two classes have the same name: every class needs its own.")
    return problems


def add_files(slot: int, files: list) -> list[str]:
    """Add each new file (by its id) to class `slot`; returns an error line per unusable file.

    A bad file gives its message and is skipped; the others are kept.
    """
    seen = st.session_state.setdefault("teach_seen", {}).setdefault(slot, {})
    pics = pictures().setdefault(slot, [])
    for f in files:
        if f is None or f.file_id in seen:
            continue
        if len(pics) >= MAX_PICTURES:
            seen[f.file_id] = f"{f.name}: this class already has {MAX_PICTURES} pictures, the most it can hold."
            continue
        try:
            pics.append(make_picture(load_image(f)))
            seen[f.file_id] = None
        except ImageError as e:
            seen[f.file_id] = f"{f.name}: {e}"
    return [seen[f.file_id] for f in files if f is not None and seen.get(f.file_id)]


def _remove(slot: int, pid: int) -> None:
    pictures()[slot] = [p for p in pictures().get(slot, []) if p.id != pid]


def _clear(slot: int) -> None:
    pictures()[slot] = []


def fill_examples(seed: int | None = None) -> None:
    """Three classes of drawn pictures (12 each), for a class without a webcam or to try it quickly."""
    rng = np.random.default_rng(seed)
    set_widget("teach_n", len(EXAMPLES))
    for slot, (name, kind) in enumerate(EXAMPLES.items()):
        set_widget(f"teach_name_{slot}", name)
        pictures()[slot] = [make_picture(draw(kind, rng)) for _ in range(12)]


def _class_box(slot: int, disabled: bool, names: dict) -> str:
    """One class: its name, uploader, webcam and pictures. Adds the accessible names of its buttons to `names`."""
    with st.container(border=True, height="stretch"):
        restore_widget(f"teach_name_{slot}", "")
        name = st.text_input(f"Class {slot + 1}", key=f"teach_name_{slot}", max_chars=NAME_LENGTH + 10,
                             placeholder="a name, e.g. thumbs up", disabled=disabled)
        save_widget(f"teach_name_{slot}", name)
        name = name.strip()
        # Every class's controls have their own names (three uploaders called "Add pictures" could not be told apart).
        files = st.file_uploader(f"Add pictures to class {slot + 1}", type=UPLOAD_TYPES, accept_multiple_files=True,
                                 key=f"teach_up_{slot}", disabled=disabled)
        photo = None
        if st.toggle(f"Use the webcam for class {slot + 1}", key=f"teach_cam_on_{slot}", disabled=disabled):
            photo = st.camera_input(f"Take a photo for class {slot + 1}: each one is added", key=f"teach_cam_{slot}")
        for error in add_files(slot, list(files or []) + [photo]):
            st.error(error)
        _thumbnails(slot, name, disabled, names)
    return name


def _thumbnails(slot: int, name: str, disabled: bool, names: dict) -> None:
    pics = pictures().get(slot, [])
    n = len(pics)
    need = "" if n >= MIN_PICTURES else f" (needs at least {MIN_PICTURES})"
    st.markdown(f"**{n} picture{'s' * (n != 1)}**{need}")
    whose = f"class {slot + 1}" + (f" ({name[:30]})" if name else "")
    per_row = 4
    for row in range(0, n, per_row):
        cols = st.columns(per_row)
        for k, (col, p) in enumerate(zip(cols, pics[row:row + per_row]), start=row + 1):
            col.image(render.png(render.upscale(p.thumb, THUMB)), output_format="PNG", width="stretch",
                      alt=D.describe_picture(p.thumb, f"Picture {k} of {whose}"))
            col.button("✕", key=f"teach_rm_{p.id}", width="stretch", on_click=_remove, args=(slot, p.id),
                       disabled=disabled, help=f"Remove this picture from {plain(name or 'this class', 30)}")
            names[f"teach_rm_{p.id}"] = f"Remove picture {k} from {whose}"
    if n:
        st.button("Remove all", key=f"teach_clear_{slot}", on_click=_clear, args=(slot,), disabled=disabled)
        names[f"teach_clear_{slot}"] = f"Remove all {n} pictures from {whose}"


def _start(names: list[str], transfer: bool) -> None:
    pics = [[p.small for p in pictures().get(slot, [])] for slot in range(len(names))]
    config = TeachConfig(transfer=transfer)
    plan = teach_plan(names, pics, config, state.default_model() if transfer else None, TEACH_LIMITS.max_steps)
    st.session_state["teach_msg"] = training.start_job(plan, TEACH_LIMITS, "teach")


def render_teach() -> None:
    st.title("Teach your own classes")
    st.markdown(INTRO)
    if training.show_other_job("teach", "A network is training on the page *Watch it learn*. Here is how it goes:"):
        return
    job = training.current_job()
    running = job is not None and job.running
    a, b = st.columns([2, 3], vertical_alignment="bottom")
    restore_widget("teach_n", 3)
    n = a.segmented_control("How many classes?", list(range(MIN_CLASSES, MAX_CLASSES + 1)), key="teach_n",
                            required=True, disabled=running)
    save_widget("teach_n", n)
    b.button("Try it with drawn examples (stripes, circles, checkerboards)", on_click=fill_examples,
             key="teach_examples", disabled=running)
    names, button_names = [], {}
    for slot, col in enumerate(st.columns(n)):
        with col:
            names.append(_class_box(slot, running, button_names))
    page_script(names=button_names)
    problems = check_names(names) + [
        f"{plain(nm or f'Class {k + 1}', 30)} needs {MIN_PICTURES - len(pictures().get(k, []))} more picture(s)."
        for k, nm in enumerate(names) if len(pictures().get(k, [])) < MIN_PICTURES]
    restore_widget("teach_transfer", True)
    transfer = st.checkbox("Start from the shipped network's filters (transfer learning)", key="teach_transfer",
                           disabled=running, help="Off: a small network starts from random filters. It needs "
                                                  "more pictures and more time to learn the same.")
    save_widget("teach_transfer", transfer)
    for p in problems:
        st.caption(f"• {p}")
    st.button("Train", type="primary", disabled=running or bool(problems), on_click=_start,
              args=(names, transfer), key="teach_train")
    st.caption(f"Limits: at most {TEACH_LIMITS.max_steps} steps and {TEACH_LIMITS.max_seconds:.0f} seconds "
               f"per training, {MAX_PICTURES} pictures per class, one training per student, {SLOTS.size} at a "
               "time for the whole class. Keep this page open while it trains.")
    if st.session_state.get("teach_msg"):
        st.warning(st.session_state.pop("teach_msg"))
    training.job_section(job, "teach", "one of your pictures ({cls})", "my-classes.npz", details=_held_out)


def _held_out(job) -> None:
    """Each picture kept aside, with what the network says about it."""
    model, held = job.model, job.plan.test
    if model is None or held is None or not len(held):
        return
    p = forward(model, model.normalize(held.images))  # (N, K)
    guess = p.argmax(1)
    right = guess == held.labels
    # right and wrong each by a mark and a word as well as a colour (blue and orange, told apart by everyone)
    tiles = [render.verdict_tile(img, ok) for img, ok in zip(held.images, right)]
    st.markdown(f"**The {len(held)} pictures kept aside, and what your network says they are:** "
                f"{int(right.sum())} right (✓, blue frame), {int((~right).sum())} wrong (✗, orange frame).")
    truth, said = [held.classes[t] for t in held.labels], [held.classes[g] for g in guess]
    show(render.mosaic(tiles, cols=min(10, len(tiles)), pad=6, labels=[g[:14] for g in said], label_size=13),
         alt=D.describe_verdicts(truth, said, right))
