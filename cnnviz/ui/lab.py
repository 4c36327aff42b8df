"""The page "What fools it": change the picture the way a person would shrug at (brighter, turned, a bit
of noise, a square covered, an invisible nudge) and watch the answer and its chance move."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

from cnnviz import explain as E
from cnnviz import render
from cnnviz.images import fit_to_input
from cnnviz.model import forward
from cnnviz.ui import pagestart, state
from cnnviz.ui.common import clickable, clicked_cell, fmt_prob, new_click, page_script, seeded_slider
from cnnviz.ui.why import figure

INTRO = """
A person who knows a cat still sees a cat in a darker photo, a tilted one, or one with a corner covered.
Does the network? Move the sliders, or **click the picture** to cover a square of it, and watch its answer.
The charts show how the chance of its first answer changes as each slider moves from one end to the other.
"""

LESSON = """
**What this shows.** The network can be very sure and still be wrong, and for reasons a person would never
be: a picture a little turned, a little noise, or a nudge of a few values out of 255 that nobody can even
see. It has only learnt to react to the numbers of pictures like the ones it practised on; it does not know
what a cat *is*.
"""

NUDGE_HELP = ("Each colour value of each pixel moves by at most this much (out of 255), each in the direction "
              "that lowers the score of the first answer fastest. Technically: the fast gradient sign method "
              "(FGSM), an adversarial example.")


@dataclass(frozen=True)
class Knob:
    """One slider: its widget key, words, range and what it sets in an explain.Change (value times scale)."""

    key: str
    label: str
    lo: int
    hi: int
    step: int
    default: int
    field: str
    scale: float = 1.0
    unit: str = ""
    help: str | None = None


def knobs(size: tuple[int, int]) -> list[Knob]:
    """The sliders for a picture of `size` (h, w) pixels."""
    h, w = size
    return [
        Knob("lab_brightness", "Brightness", -120, 120, 5, 0, "brightness", help="Added to every value (0 to 255)"),
        Knob("lab_contrast", "Contrast", 20, 300, 10, 100, "contrast", 0.01, "%",
             help="100% is the picture as it is; more spreads light and dark apart"),
        Knob("lab_noise", "Noise", 0, 80, 4, 0, "noise", help="How strong the random speckles are (out of 255)"),
        Knob("lab_rotation", "Turn", -180, 180, 5, 0, "rotation", unit="°", help="Anticlockwise, in degrees"),
        Knob("lab_right", "Shift right", -(w // 2), w // 2, 1, 0, "shift_right", unit=" px"),
        Knob("lab_down", "Shift down", -(h // 2), h // 2, 1, 0, "shift_down", unit=" px"),
        Knob("lab_eps", "Invisible nudge", 0, 16, 1, 0, "epsilon", help=NUDGE_HELP),
    ]


def sweep_values(k: Knob, most: int = 41) -> np.ndarray:
    """The slider positions a chart is drawn through: every step, or every second, third... so that at
    most `most` are drawn (always both ends)."""
    every = -(-((k.hi - k.lo) // k.step + 1) // most)  # ceil
    xs = np.arange(k.lo, k.hi + 1, k.step * every)
    return xs if xs[-1] == k.hi else np.append(xs, k.hi)


def change_for(values: dict, ks: list[Knob], square) -> E.Change:
    """Slider values {key: value} -> the explain.Change they describe."""
    return E.Change(square=square, **{k.field: values[k.key] * k.scale for k in ks})


def sweeps(model, small: np.ndarray, current: E.Change, ks: list[Knob], target: int):
    """The picture now and every chart's pictures, in one batch -> (now uint8 (h, w, 3), its probabilities
    (K,), {knob key: (slider values (n,), probabilities (n, K))})."""
    changes, spans = [current], {}
    for k in ks:
        xs = sweep_values(k)
        spans[k.key] = (xs, len(changes))
        changes += [replace(current, **{k.field: float(v) * k.scale}) for v in xs]
    pictures = E.changed_pictures(model, small, changes, target)
    p = forward(model, model.normalize(pictures))  # (N, K)
    return pictures[0], p[0], {key: (xs, p[start:start + len(xs)]) for key, (xs, start) in spans.items()}


# ---------------------------------------------------------------- pictures


def curve(xs: np.ndarray, probs: np.ndarray, target: int, now: float, title: str, unit: str,
          width: int = 340, height: int = 140) -> Image.Image:
    """The chance of class `target` (probs (n, K)) against a slider's values xs (n,), 0 to 100%.

    Grey bands where the network's answer is another class; an orange line at the slider's value now.
    """
    left, right, top, bottom = 40, 10, 22, 22
    img = Image.new("RGB", (width, height), "white")
    d, f = ImageDraw.Draw(img), render.font(11)
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = float(xs[0]), float(xs[-1])

    def px(x, y):
        return left + (x - x0) / ((x1 - x0) or 1) * pw, top + (1 - y) * ph

    other = np.argmax(probs, axis=1) != target
    half = pw / max(1, len(xs) - 1) / 2
    for x, o in zip(xs, other):
        if o:
            cx = px(x, 0)[0]
            d.rectangle([max(left, cx - half), top, min(left + pw, cx + half), top + ph], fill=(225, 225, 225))
    d.rectangle([left, top, left + pw, top + ph], outline=(180, 180, 180))
    for y in (0.0, 0.5, 1.0):
        d.text((left - 4, px(x0, y)[1]), f"{y:.0%}", fill=(90, 90, 90), font=f, anchor="rm")
    d.line([px(x0, 0.5), px(x1, 0.5)], fill=(215, 215, 215))
    nx = px(now, 0)[0]
    d.line([nx, top, nx, top + ph], fill=(255, 140, 0), width=2)
    d.line([px(x, y) for x, y in zip(xs, probs[:, target])], fill=(40, 40, 40), width=2)
    d.text((left, 4), title, fill=(20, 20, 20), font=render.font(12), anchor="la")
    d.text((left, top + ph + 4), f"{x0:g}{unit}", fill=(90, 90, 90), font=f, anchor="la")
    d.text((left + pw, top + ph + 4), f"{x1:g}{unit}", fill=(90, 90, 90), font=f, anchor="ra")
    return img


def difference(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, float, int]:
    """What changed, magnified: uint8 (h, w, 3) with mid-grey for no change -> (picture, gain, largest change)."""
    diff = after.astype(np.int16) - before.astype(np.int16)
    largest = int(np.abs(diff).max())
    gain = min(20.0, 127 / largest) if largest else 1.0
    return np.clip(np.round(128 + diff * gain), 0, 255).astype(np.uint8), gain, largest


def curve_caption(k: Knob, xs, probs, target: int, name: str, now_p: float) -> str:
    best = int(np.argmax(probs[:, target]))
    wrong = int(np.sum(np.argmax(probs, axis=1) != target))
    return (f"Chance of {name} as {k.label.lower()} goes from {xs[0]:g}{k.unit} to {xs[-1]:g}{k.unit}: highest "
            f"{fmt_prob(probs[best, target])} at {xs[best]:g}{k.unit}, now {fmt_prob(now_p)}. Another answer at "
            f"{wrong} of {len(xs)} points (grey).")


# ---------------------------------------------------------------- the page


def _reset(ks: list[Knob]) -> None:
    for k in ks:
        st.session_state[k.key] = k.default
    st.session_state["lab_square_on"] = False


def render_lab() -> None:
    presentation = pagestart.start()
    page_script()  # gives the clickable picture its words
    st.title("What fools it")
    st.markdown(INTRO)
    choice = pagestart.pick("Picture", "lab_picture")
    model = state.session_model()
    small = fit_to_input(pagestart.picture_of(choice), model.input_size)
    _lab(model, small, 288 if presentation else 224)
    st.markdown(LESSON)


@st.fragment
def _lab(model, small: np.ndarray, px: int) -> None:
    h, w = small.shape[:2]
    classes = model.classes
    before = forward(model, model.normalize(small)[None])[0]  # (K,)
    target = int(np.argmax(before))
    name = classes[target]
    ks = knobs((h, w))

    cell = clicked_cell(new_click("lab_click"), (h, w))
    if cell is not None:  # a click on the picture covers a square there
        st.session_state["lab_sq_row"], st.session_state["lab_sq_col"] = cell[0] + 1, cell[1] + 1
        st.session_state["lab_square_on"] = True
    controls, shown = st.columns([1, 1.4])
    with controls:
        values = {}
        for k in ks:
            if not k.lo <= st.session_state.get(k.key, k.lo - 1) <= k.hi:  # missing, or from a bigger picture
                st.session_state[k.key] = k.default
            values[k.key] = st.slider(k.label + (f" ({k.unit.strip()})" if k.unit else ""), k.lo, k.hi,
                                      step=k.step, key=k.key, help=k.help)
        st.markdown("**Cover a square** (click the picture, or use these)")
        on = st.toggle("Cover a square", key="lab_square_on")
        a, b, c = st.columns(3)
        row = seeded_slider(a, "Row", 1, h, h // 2, "lab_sq_row")
        col = seeded_slider(b, "Column", 1, w, w // 2, "lab_sq_col")
        side = seeded_slider(c, "Side", 1, max(2, h // 2), max(1, h // 4), "lab_sq_side")
        st.button("Put everything back", on_click=_reset, args=(ks,), key="lab_reset")
    square = (row - 1, col - 1, side) if on else None
    current = change_for(values, ks, square)
    now, p, curves = sweeps(model, small, current, ks, target)
    answer = int(np.argmax(p))

    with shown:
        verdict = "still" if answer == target else "now"
        box = st.success if answer == target else st.error
        box(f"It {verdict} says **{classes[answer]}** ({fmt_prob(p[answer])}). "
            f"Chance of {name}: {fmt_prob(p[target])}, was {fmt_prob(before[target])}.")
        size = px + 96
        img = render.upscale(now, size)
        if square is not None:
            img = render.outline(img, E.square_box(square, (h, w)), (h, w), color=(255, 150, 0), width=3)
        st.caption(f"The changed picture, {w}x{h} as the network sees it. Click anywhere to cover a square there"
                   + ("" if square is None else " (orange frame: the covered square)") + ".")
        clickable(img, key="lab_click", alt=f"The changed picture: the network says {classes[answer]}"
                  + ("" if square is None else f"; a square of side {side} is covered at row {row}, column {col}"),
                  cursor="crosshair", png_compression_level=1, width="content")
        diff, gain, largest = difference(small, now)
        a, b = st.columns(2)
        with a:
            figure(render.upscale(small, size // 2), f"Before: {name} ({fmt_prob(before[target])})")
        with b:
            if largest:
                figure(render.upscale(diff, size // 2),
                       f"What changed, {gain:.0f} times stronger" if gain > 1 else "What changed",
                       f"What changed, magnified {gain:.0f} times: grey is no change, lighter is brighter, darker "
                       f"is darker (largest change {largest} of 255)")
            else:
                figure(render.upscale(diff, size // 2), "What changed: nothing yet")

    st.subheader(f"The chance of {name} along each slider")
    cols = st.columns(4)
    for n, k in enumerate(ks):
        xs, probs = curves[k.key]
        with cols[n % 4]:
            figure(curve(xs, probs, target, values[k.key], k.label, k.unit),
                   f"{k.label} at {values[k.key]:g}{k.unit}: {name} {fmt_prob(p[target])}",
                   curve_caption(k, xs, probs, target, name, p[target]))
    st.caption("Black line: the chance of " + name + ". Orange line: where the slider is now. Grey bands: "
               "there the network gives another answer.")
    flip = E.smallest_flip(model, small)
    if flip is None:
        st.markdown("No invisible nudge up to 64 out of 255 changes this answer.")
    else:
        seen = ("A person cannot see a change that small." if flip <= 8 else
                "Small enough to overlook: compare the picture before and after.")
        most = next(k.hi for k in ks if k.field == "epsilon")
        reach = "" if flip <= most else f" (more than the slider goes: {most})"
        st.markdown(f"**The smallest invisible nudge that changes the answer on the unchanged picture: {flip} out "
                    f"of 255** per value{reach}. {seen}")
