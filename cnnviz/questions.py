"""Check for understanding: predict, then reveal. Questions built from the real numbers of one picture.

Every question comes from a trace of the picture the student is looking at, never from a fixed quiz:
the pixel to name, the window and filter to multiply, the numbers to put through ReLU are the ones on
screen, and the answer is what the network's own layers compute from them (`layers.conv2d` on the
window, the pooling layer on its window, `layers.softmax` on the scores).

    stages = trace(model, image); small = fit_to_input(image, model.input_size)
    q = generate(2, model, stages, small, seed=0)
    check(q, 1.25)            # True when within q.tolerance of the network's value

One generator per walkthrough step (GENERATORS, keyed 1 to 7). The same picture, network, step and
seed give the same question, with the same `id` (a hash of what the question says), so answers from a
whole class can be counted together. Rows, columns, maps and filters count from 1 in the words; the
positions in `Question.data` count from 0, as NumPy does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import layers as L
from .images import fit_to_input
from .model import Model, freeze, trace

ROUND = "{:.2f}"  # every map number, weight and score in the questions (the views' rounding too)
TRIES = 200  # random positions tried before settling for any


class NoQuestion(ValueError):
    """This network has no layer of the kind a step asks about (say, no pooling)."""


@dataclass(frozen=True)
class Question:
    """One predict-then-reveal question.

    kind: "choice" (pick from `choices`; `answer` is an index, or a tuple of indices when `multiple`)
    or "number" (type a number; right within `tolerance` of `answer`, a tolerance the prompt states).
    reason: the worked answer, with the same numbers as the prompt. data: the numbers a view needs to
    draw the question (windows, filters, 0-based positions), as nested tuples.
    """

    id: str
    step: int
    kind: str
    prompt: str
    answer: int | float | tuple
    reason: str
    choices: tuple = ()
    multiple: bool = False
    tolerance: float = 0.0
    data: Mapping = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "data", freeze(self.data))


def check(question: Question, response) -> bool:
    """Is `response` right? Never raises: anything malformed (text, NaN, an index out of range) is wrong.

    number: a number or numeric text within `tolerance` of the answer. choice: the index of the right
    choice; with `multiple`, the collection of exactly the right indices, in any order.
    """
    q = question
    try:
        if q.kind == "number":
            if isinstance(response, bool) or (isinstance(response, str) and len(response) > 40):
                return False
            v = float(response)
            return math.isfinite(v) and abs(v - q.answer) <= q.tolerance + 1e-9
        if q.multiple:
            if isinstance(response, (str, bytes, Mapping)) or not hasattr(response, "__iter__"):
                return False
            picked = list(response)
            if len(picked) > len(q.choices) or not all(_is_index(k, q) for k in picked):
                return False
            return {int(k) for k in picked} == set(q.answer)
        return _is_index(response, q) and int(response) == q.answer
    except (TypeError, ValueError, OverflowError):
        return False


def _is_index(k, q: Question) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= int(k) < len(q.choices)


def _question(step: int, kind: str, prompt: str, answer, reason: str, choices=(), multiple=False,
              tolerance=0.0, data=None) -> Question:
    """A Question whose id hashes everything it says: the same numbers give the same id."""
    said = json.dumps([step, kind, prompt, list(choices), answer, tolerance], default=list)
    qid = f"s{step}-" + hashlib.sha256(said.encode()).hexdigest()[:16]
    return Question(qid, step, kind, prompt, answer, reason, tuple(choices), multiple, tolerance, data or {})


def _n(x: float) -> str:
    """A map number as every question writes it: two decimals, never "-0.00"."""
    s = ROUND.format(float(x))
    return "0.00" if s == "-0.00" else s


def _rc(i: int, j: int) -> str:
    return f"row {i + 1}, column {j + 1}"


def _shown(a) -> np.ndarray:
    """The numbers exactly as written in a question (two decimals), to work with as a student would."""
    return np.round(np.asarray(a, np.float64), 2)


def _nested(a: np.ndarray):
    return np.asarray(a, np.float64).tolist()


# ---------------------------------------------------------------- step 1: pixels

CHANNELS = ("red", "green", "blue")
# A colour is named only when the pixel is clearly that colour, so the answer is not a matter of taste.
COLOURS: dict[str, Callable[[int, int, int], bool]] = {
    "red": lambda r, g, b: r >= 140 and g <= 80 and b <= 80,
    "green": lambda r, g, b: g >= 120 and r <= 80 and b <= 80,
    "blue": lambda r, g, b: b >= 140 and r <= 80 and g <= 100,
    "yellow": lambda r, g, b: r >= 180 and g >= 170 and b <= 80,
    "white": lambda r, g, b: min(r, g, b) >= 200 and max(r, g, b) - min(r, g, b) <= 30,
    "black": lambda r, g, b: max(r, g, b) <= 40 and max(r, g, b) - min(r, g, b) <= 20,
}
WHY_COLOUR = {
    "red": "lots of red light and little green or blue looks red",
    "green": "lots of green light and little red or blue looks green",
    "blue": "lots of blue light and little red or green looks blue",
    "yellow": "red and green light together, with little blue, look yellow",
    "white": "all three colours of light, each near full (255), look white",
    "black": "all three numbers near 0 means almost no light, which looks black",
}
SAME = "all three are the same"


def colour_name(rgb) -> str | None:
    """The clear colour name of a (r, g, b) pixel (0..255), or None when it is no clear colour."""
    r, g, b = (int(v) for v in rgb)
    names = [name for name, rule in COLOURS.items() if rule(r, g, b)]
    return names[0] if len(names) == 1 else None


def pixel_colour(model: Model, stages, small: np.ndarray, rng: np.random.Generator) -> Question:
    """Step 1: "this pixel is (200, 40, 40): which colour is it?"

    A pixel of a clear colour is picked at random; when the picture has none, the question asks which
    of its three numbers is largest instead.
    """
    px = small.astype(np.int64)  # (h, w, 3)
    named = [(i, j) for i in range(px.shape[0]) for j in range(px.shape[1]) if colour_name(px[i, j])]
    if named:
        i, j = named[rng.integers(len(named))]
        r, g, b = (int(v) for v in px[i, j])
        name = colour_name(px[i, j])
        choices = tuple(COLOURS)
        prompt = (f"The pixel at {_rc(i, j)} of the small picture has red {r}, green {g} and blue {b} "
                  "(each from 0 to 255). Which colour is it?")
        reason = f"Red {r}, green {g}, blue {b}: {WHY_COLOUR[name]}. So it is {name}."
        return _question(1, "choice", prompt, choices.index(name), reason, choices,
                         data={"row": i, "col": j, "rgb": (r, g, b)})
    top2 = np.sort(px, axis=2)[:, :, -2:]  # (h, w, 2): second largest, largest
    gap = top2[:, :, 1] - top2[:, :, 0]  # (h, w)
    grey = (px.max(axis=2) == px.min(axis=2))  # (h, w)
    if gap.max() > 0:  # a pixel with one largest number, clearly largest if the picture has one
        pick = np.argwhere(gap >= min(10, gap.max()))
    elif grey.any():
        pick = np.argwhere(grey)
    else:  # every pixel has two numbers tied for largest: no single right answer
        raise NoQuestion("no pixel has one largest colour")
    i, j = (int(v) for v in pick[rng.integers(len(pick))])
    r, g, b = (int(v) for v in px[i, j])
    choices = (*CHANNELS, SAME)
    if gap[i, j] == 0:
        answer, why = 3, "all three numbers are equal, so no colour of light is stronger than the others"
    else:
        answer = int(np.argmax(px[i, j]))
        why = f"{CHANNELS[answer]} ({int(px[i, j, answer])}) is the biggest of the three"
    prompt = (f"The pixel at {_rc(i, j)} of the small picture has red {r}, green {g} and blue {b}. "
              "Which colour of light does it have most of?")
    return _question(1, "choice", prompt, answer, f"Red {r}, green {g}, blue {b}: {why}.", choices,
                     data={"row": i, "col": j, "rgb": (r, g, b)})


# ---------------------------------------------------------------- step 2: convolution


def first_stage(stages, kinds, start: int = 1) -> int:
    """Index of the first stage at or after `start` whose kind is in `kinds` (else NoQuestion)."""
    for k in range(start, len(stages)):
        if stages[k].kind in kinds:
            return k
    raise NoQuestion(f"this network has no {' or '.join(kinds)} layer")


def conv_value(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 2: "work out the filter's value at this window" (a number, right within a stated tolerance).

    A filter of the first conv layer and a window that lies inside the picture (no padding to explain).
    The answer is `layers.conv2d` of that window with that filter and bias, which is the feature map's
    value there. The tolerance covers working from the two-decimal numbers shown: it is the distance
    between the network's value and the value of the numbers as shown, plus 0.05, rounded up to 0.05.
    """
    k = first_stage(stages, ("conv",))
    layer, x = stages[k].layer, stages[k - 1].output  # x (C, H, W)
    w = layer.params["weight"]  # (F, C, kh, kw)
    b = layer.params["bias"] if "bias" in layer.params else np.zeros(w.shape[0], w.dtype)
    F, C, kh, kw = w.shape
    s, p = layer.options.get("stride", 1), layer.options.get("padding", 0)
    _, Ho, Wo = stages[k].output.shape
    for _ in range(TRIES):
        f, i, j = int(rng.integers(F)), int(rng.integers(Ho)), int(rng.integers(Wo))
        top, left, bottom, right = L.window_box(i, j, kh, kw, s, p)
        if top >= 0 and left >= 0 and bottom <= x.shape[1] and right <= x.shape[2]:
            break
    win = L.window(x, i, j, kh, kw, s, p)  # (C, kh, kw)
    value = float(L.conv2d(win[None], w[f:f + 1], b[f:f + 1])[0, 0, 0, 0])
    shown = float(L.conv2d(_shown(win)[None], _shown(w[f:f + 1]), _shown(b[f:f + 1]))[0, 0, 0, 0])
    tolerance = round(math.ceil((abs(shown - value) + 0.05) / 0.05 - 1e-9) * 0.05, 2)
    prompt = (f"Filter {f + 1} of {layer.name} sits on the {kh} by {kw} window whose top-left corner is "
              f"at {_rc(top, left)}. Multiply each of the window's numbers by the filter's number in the "
              f"same place, for all {C} colours, add up all {C * kh * kw} products and add the bias "
              f"({_n(b[f])}). What do you get? (Within {tolerance:.2f} counts as right.)")
    reason = (f"The products add up to {_n(value - float(b[f]))}; with the bias {_n(b[f])} that makes "
              f"{_n(value)}, the value at {_rc(i, j)} of feature map {f + 1}.")
    return _question(2, "number", prompt, value, reason, tolerance=tolerance,
                     data={"stage": layer.name, "filter": f, "row": i, "col": j, "top": top, "left": left,
                           "window": _nested(win), "weight": _nested(w[f]), "bias": float(b[f])})


# ---------------------------------------------------------------- step 3: ReLU

ROW = 5  # numbers in the row put through the activation


def pick_row(x: np.ndarray, n: int, rng: np.random.Generator, fmt: str = ROUND) -> tuple[int, int, int]:
    """Where to take `n` neighbours in a row of maps x (C, H, W) to put through an activation.

    -> (map, row, first column), 0-based. Tried at random; best is a row with both signs, numbers
    that all look different written with `fmt`, and none so near 0 that `fmt` hides its sign.
    """
    C, H, W = x.shape
    if W < n:
        raise NoQuestion(f"maps narrower than {n}")
    best, score = (0, 0, 0), (False,) * 3
    for _ in range(TRIES):
        c, i, j = int(rng.integers(C)), int(rng.integers(H)), int(rng.integers(W - n + 1))
        v = x[c, i, j:j + n]
        shown = [fmt.format(float(a)) for a in v]
        now = (not any(float(t) == 0 for t in shown), bool((v > 0).any() and (v < 0).any()),
               len(set(shown)) == n)
        if now > score:
            best, score = (c, i, j), now
        if all(now):
            break
    return best


def activation_survivors(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 3: "which of these five numbers survive ReLU?" (pick every right one).

    Five neighbours from one map going into the first activation, with both signs among them when the
    map has them, none so close to 0 that two decimals hide its sign. The answer is what the
    activation layer itself does to them.
    """
    k = first_stage(stages, L.ACTIVATIONS, first_stage(stages, ("conv",)))
    layer, x = stages[k].layer, stages[k - 1].output  # x (C, H, W)
    c, i, j = pick_row(x, ROW, rng)
    v = x[c, i, j:j + ROW].astype(np.float64)  # (ROW,)
    out = layer(v[None, None, None, :])[0, 0, 0]  # (ROW,) through the network's own layer
    title = L.KINDS[layer.kind].title
    if layer.kind == "relu":
        answer = tuple(int(n) for n in np.flatnonzero(out > 0))
        ask = f"Which of them come out of {title} unchanged (the others become 0)?"
        why = "ReLU keeps every number above 0 as it is and turns every negative number into 0"
    else:  # another activation: which come out above what 0 gives
        zero = float(layer(np.zeros((1, 1, 1, 1)))[0, 0, 0, 0])
        answer = tuple(int(n) for n in np.flatnonzero(out > zero))
        ask = f"Which of them come out of {title} bigger than {_n(zero)} (what 0 gives)?"
        why = f"{title} gives more than {_n(zero)} exactly for the numbers above 0"
    nums = ", ".join(_n(a) for a in v)
    prompt = (f"These {ROW} numbers from map {c + 1} of {stages[k - 1].name} (row {i + 1}, columns "
              f"{j + 1} to {j + ROW}) go into {title}: {nums}. {ask}")
    kept = [_n(v[n]) for n in answer]
    reason = (f"{why[0].upper()}{why[1:]}: {', '.join(kept) if kept else 'none of them'} "
              f"{'is' if len(kept) == 1 else 'are'} above 0, so {'it comes' if len(kept) == 1 else 'they come'} "
              f"through; out come {', '.join(_n(a) for a in out)}.")
    return _question(3, "choice", prompt, answer, reason, tuple(_n(a) for a in v), multiple=True,
                     data={"stage": layer.name, "map": c, "row": i, "col": j, "values": _nested(v),
                           "out": _nested(out)})


# ---------------------------------------------------------------- step 4: pooling

CORNERS = {2: ("top left", "top right", "bottom left", "bottom right")}


def pool_keeps(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 4: "what does max pooling keep from this window?"

    A window of one map, its numbers all different when written with two decimals and not all 0.
    The choices are its numbers and their average; the answer is what the pooling layer gives.
    """
    k = first_stage(stages, ("maxpool", "avgpool"))
    layer, x = stages[k].layer, stages[k - 1].output  # x (C, H, W)
    size, _, stride, _ = L.KINDS[layer.kind].geometry(layer.params, layer.options)
    C, Ho, Wo = stages[k].output.shape
    best, score = (0, 0, 0), (-1, -1.0)
    for _ in range(TRIES):  # the window whose numbers look most different, best all different
        c, i, j = int(rng.integers(C)), int(rng.integers(Ho)), int(rng.integers(Wo))
        win = L.window(x[c:c + 1], i, j, size, size, stride)[0]  # (size, size)
        distinct = len({_n(a) for a in (*win.ravel(), win.mean())})
        if (distinct, float(np.ptp(win))) > score:
            best, score = (c, i, j), (distinct, float(np.ptp(win)))
        if distinct == win.size + 1:
            break
    c, i, j = best
    win = L.window(x[c:c + 1], i, j, size, size, stride)  # (1, size, size)
    kept = float(layer(win[None])[0, 0, 0, 0])  # the pooling layer on this one window
    names = CORNERS.get(size) or tuple(f"row {u + 1}, column {v + 1}" for u in range(size) for v in range(size))
    values = [*win[0].ravel().astype(np.float64), float(win.mean())]
    choices = tuple(f"{name}: {_n(a)}" for name, a in zip(names, values)) + (f"their average: {_n(values[-1])}",)
    answer = int(np.argmin([abs(a - kept) for a in values]))
    title = L.KINDS[layer.kind].title
    top, left = i * stride, j * stride
    prompt = (f"{title[0].upper()}{title[1:]} ({layer.name}) reads the {size} by {size} window of map "
              f"{c + 1} of {stages[k - 1].name} whose top-left corner is at {_rc(top, left)}: "
              f"{', '.join(_n(a) for a in values[:-1])}. What does it keep?")
    rule = "the largest" if layer.kind == "maxpool" else "the average"
    reason = (f"{title[0].upper()}{title[1:]} keeps {rule} number of each window: {_n(kept)}, the value at "
              f"{_rc(i, j)} of map {c + 1} of {layer.name}.")
    return _question(4, "choice", prompt, answer, reason, choices,
                     data={"stage": layer.name, "map": c, "row": i, "col": j, "top": top, "left": left,
                           "window": _nested(win[0]), "kept": kept})


# ---------------------------------------------------------------- step 5: deeper layers


def smallest_maps(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 5: "which layer's maps are smallest?" Four layers, exactly one of them with the smallest maps."""
    maps = [s for s in stages[1:] if s.output.ndim == 3]
    if not maps:
        raise NoQuestion("this network has no maps")
    area = {s.name: s.output.shape[1] * s.output.shape[2] for s in maps}
    least = min(area.values())
    smallest = [s.name for s in maps if area[s.name] == least]
    bigger = [s.name for s in maps if area[s.name] > least]
    if not bigger:
        raise NoQuestion("every layer makes maps of the same size")
    # One layer of each bigger size first, so the choices show the maps shrinking.
    groups: dict[int, list[str]] = {}
    for n in bigger:
        groups.setdefault(area[n], []).append(n)
    pool = [g[int(rng.integers(len(g)))] for _, g in sorted(groups.items(), reverse=True)]
    rest = [n for n in bigger if n not in pool]
    others = (pool + [rest[t] for t in rng.permutation(len(rest))])[:3]
    names = [smallest[int(rng.integers(len(smallest)))], *others]
    names = [names[t] for t in rng.permutation(len(names))]
    shape = {s.name: s.output.shape for s in maps}
    title = {s.name: L.KINDS[s.kind].title for s in maps}
    choices = tuple(f"{n} ({title[n]})" for n in names)
    answer = next(t for t, n in enumerate(names) if area[n] == least)
    prompt = (f"The picture goes in as {stages[0].output.shape[1]} by {stages[0].output.shape[2]} pixels. "
              "Which of these layers makes the smallest maps?")
    said = ", ".join(f"{n} {shape[n][1]} by {shape[n][2]}" for n in names)
    reason = (f"Their maps are {said}. Only layers that read windows with a step bigger than 1, like "
              f"pooling, shrink the maps; filters with padding keep the size. So {names[answer]} has the "
              "smallest.")
    return _question(5, "choice", prompt, answer, reason, choices,
                     data={"stages": tuple(names), "shapes": tuple(tuple(shape[n]) for n in names)})


# ---------------------------------------------------------------- step 6: fully connected

CHOICES = 4  # classes offered when there are more than CHOICES + 2


def map_contributions(stages) -> tuple[int, np.ndarray, np.ndarray]:
    """What each map of the last map stage gives each class in the fully connected layer after it.

    -> (index of that map stage, its maps (C, H, W), contributions (C, K)): contributions[c, k] is
    the sum over the map's positions of the dense weight for class k times the map's number there.
    Summed over maps and plus the bias, they are the class scores.
    """
    f = first_stage(stages, ("flatten",))
    if f + 1 >= len(stages) or stages[f + 1].kind != "dense" or stages[f - 1].output.ndim != 3:
        raise NoQuestion("no fully connected layer reads the maps directly")
    a = stages[f - 1].output.astype(np.float64)  # (C, H, W)
    w = stages[f + 1].layer.params["weight"].astype(np.float64)  # (K, C*H*W)
    C = a.shape[0]
    per_map = np.einsum("kcn,cn->ck", w.reshape(w.shape[0], C, -1), a.reshape(C, -1))  # (C, K)
    return f - 1, a, per_map


def dense_favourite(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 6: "which class gets the most from this map?" (dense weights times that map, summed per class)."""
    m, a, per_map = map_contributions(stages)
    C, K = per_map.shape
    live = [c for c in range(C) if np.abs(a[c]).max() > 0]
    c = live[rng.integers(len(live))] if live else int(rng.integers(C))
    got = per_map[c]  # (K,)
    top = int(np.argmax(got))
    if K <= CHOICES + 2:
        ks = list(range(K))
    else:  # the winner and others clearly below it, so two decimals never show a tie
        below = [k for k in range(K) if k != top and _n(got[k]) != _n(got[top])]
        ks = sorted([top, *(below[t] for t in rng.permutation(len(below))[:CHOICES - 1])])
    choices = tuple(model.classes[k] for k in ks)
    H, W = a.shape[1:]
    prompt = (f"Map {c + 1} of {stages[m].name} ({H} by {W} numbers) goes into the fully connected layer. "
              "Each class multiplies these numbers by its own weights and adds up the products. "
              "Which of these classes gets the most from this map?")
    sums = ", ".join(f"{model.classes[k]} {_n(got[k])}" for k in ks)
    reason = (f"Adding up map {c + 1}'s numbers times each class's weights gives {sums}. "
              f"{model.classes[top]} gets the most.")
    return _question(6, "choice", prompt, ks.index(top), reason, choices,
                     data={"stage": stages[m].name, "map": c, "classes": tuple(ks),
                           "contributions": _nested(got[ks])})


# ---------------------------------------------------------------- step 7: softmax


def share_options(percent: int, rng: np.random.Generator) -> tuple[int, ...]:
    """The true share (whole percent) and the two nearest of its neighbours 25 and 50 points away (1 to 100).

    -> three whole percentages, ascending, at least 25 points apart: the one nearest to the truth is the truth.
    """
    far = [v for v in (percent - 50, percent - 25, percent + 25, percent + 50) if 1 <= v <= 100]
    far.sort(key=lambda v: (abs(v - percent), rng.random()))
    return tuple(sorted((percent, *far[:2])))


def softmax_winner(model: Model, stages, small, rng: np.random.Generator) -> Question:
    """Step 7: "which class wins, and with roughly what share?"

    The scores are the input to softmax; the shares are `layers.softmax` of them. The choices pair the
    two highest-scoring classes with three shares, 25 points apart or more, so "roughly" means "nearest".
    """
    d = max(k for k, s in enumerate(stages) if s.kind == "dense")
    scores = stages[d].output.astype(np.float64)  # (K,)
    probs = L.softmax(scores)  # (K,)
    order = np.argsort(-probs, kind="stable")
    win = int(order[0])
    percent = int(round(100 * float(probs[win])))
    shares = share_options(percent, rng)
    pair = [win, int(order[1])] if len(order) > 1 else [win]
    pair = [pair[t] for t in rng.permutation(len(pair))]
    options = [(k, v) for k in pair for v in shares]
    choices = tuple(f"{model.classes[k]}, about {v}%" for k, v in options)
    answer = options.index((win, percent))
    listed = ", ".join(f"{c} {_n(v)}" for c, v in zip(model.classes, scores))
    prompt = (f"The fully connected layer gives these scores: {listed}. Softmax turns them into shares of "
              "100%. Which class wins, and with roughly what share?")
    shifted = scores - scores.max()
    total = float(np.exp(shifted).sum())
    reason = (f"The biggest score, {model.classes[win]}'s {_n(scores[win])}, always wins. Subtract it from "
              f"every score, take exp of each and add them up: {total:.2f}. {model.classes[win]}'s exp is 1, "
              f"so its share is 1 / {total:.2f} = {percent}%.")
    return _question(7, "choice", prompt, answer, reason, choices,
                     data={"scores": _nested(scores), "shares": _nested(probs), "winner": win})


GENERATORS: Mapping[int, Callable] = {
    1: pixel_colour,
    2: conv_value,
    3: activation_survivors,
    4: pool_keeps,
    5: smallest_maps,
    6: dense_favourite,
    7: softmax_winner,
}


def generate(step: int, model: Model, stages, small: np.ndarray, seed: int = 0) -> Question:
    """The question for walkthrough `step` (1 to 7) about this trace.

    stages: `trace(model, image)`; small: the picture at input size, `fit_to_input(image,
    model.input_size)`, uint8 (h, w, 3). Raises NoQuestion when the network lacks the layer a step
    is about, KeyError for a step without questions.
    """
    rng = np.random.default_rng([seed, step])
    return GENERATORS[step](model, stages, small, rng)


def for_picture(model: Model, image: np.ndarray, seed: int = 0) -> dict[int, Question]:
    """Every step's question for one uint8 (H, W, 3) picture: {step: Question}, steps without one left out."""
    stages = trace(model, image)
    small = fit_to_input(image, model.input_size)
    out = {}
    for step in GENERATORS:
        try:
            out[step] = generate(step, model, stages, small, seed)
        except NoQuestion:
            pass
    return out
