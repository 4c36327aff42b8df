"""Printable worksheets from one picture's real numbers: read pixels, slide a filter by hand, ReLU a
row, max-pool a grid, softmax three scores; the answer key on its own page.

    python -m cnnviz.handout --sample smiley --out smiley.pdf
    worksheet_pdf(model, image, "smiley") -> bytes      # for a download button

`worksheet` works out every number (from `model.trace` and the `layers` functions, on the numbers
exactly as printed); `draw` lays them out on A4 pages with matplotlib's PDF backend, text as text
(TrueType, so the numbers can be copied and read back), black on white for any printer.
"""

from __future__ import annotations

import argparse
import io
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import layers as L
from . import questions as Q
from .images import fit_to_input, load_image
from .model import Model, load_model, trace
from .samples import sample_names, sample_path

A4 = (210.0, 297.0)  # mm
MM = 1 / 25.4  # inches per mm
HAND = 1  # decimals of the numbers worked with by hand (filter, window, scores): products stay short
MAP = 2  # decimals of map numbers only compared or copied (ReLU, pooling), as the views write them
ROW = 8  # numbers in the ReLU row
COLOUR_WORDS = ("red", "green", "blue")
RC = {"pdf.fonttype": 42, "font.family": "DejaVu Sans", "pdf.compression": 6}


def fmt(x: float, decimals: int) -> str:
    """A number with `decimals` decimals, never "-0.0"."""
    s = f"{float(x):.{decimals}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def printed(a, decimals: int) -> np.ndarray:
    """The numbers exactly as the sheet prints them, to compute the key from (float64)."""
    return np.round(np.asarray(a, np.float64), decimals)


@dataclass(frozen=True)
class Pixels:
    top: int  # 0-based, the window of pixels printed
    left: int
    pixels: np.ndarray  # uint8 (3, 3, 3): rows, columns, colours
    row: int  # the pixel asked about
    col: int
    question: Q.Question  # its colour, as in step 1


@dataclass(frozen=True)
class Conv:
    layer: str
    filter: int
    row: int  # the output position, 0-based
    col: int
    top: int  # the window's top-left in the input, 0-based
    left: int
    window: np.ndarray  # (C, kh, kw), as printed
    weight: np.ndarray  # (C, kh, kw), as printed
    bias: float  # as printed
    products: np.ndarray  # (C, kh, kw)
    sums: np.ndarray  # (C,)
    total: float  # layers.conv2d on the printed numbers
    network: float  # the feature map's value, from the unrounded numbers


@dataclass(frozen=True)
class Activation:
    layer: str  # the activation layer
    source: str  # the stage its numbers come from
    kind: str
    map: int
    row: int
    col: int
    values: np.ndarray  # (ROW,), as printed
    out: np.ndarray  # (ROW,), the layer on the printed numbers


@dataclass(frozen=True)
class Pool:
    layer: str
    source: str
    kind: str
    size: int
    map: int
    top: int
    left: int
    grid: np.ndarray  # (2 * size, 2 * size), as printed
    out: np.ndarray  # (2, 2), the layer on the printed grid


@dataclass(frozen=True)
class Softmax:
    classes: tuple  # the three highest-scoring classes, highest first
    scores: np.ndarray  # (3,), as printed
    shifted: np.ndarray  # (3,) scores - their largest
    exps: np.ndarray  # (3,)
    shares: np.ndarray  # (3,) layers.softmax of the printed scores
    network: tuple  # (class, share) of those classes over all classes, from the network


@dataclass(frozen=True)
class Worksheet:
    name: str
    small: np.ndarray  # uint8 (h, w, 3), the picture as the network sees it
    pixels: Pixels
    conv: Conv
    activation: Activation
    pool: Pool
    softmax: Softmax


# ---------------------------------------------------------------- the numbers


def worksheet(model: Model, image: np.ndarray, name: str = "", seed: int = 0) -> Worksheet:
    """Every number of the sheet and its key for one uint8 (H, W, 3) picture."""
    stages = trace(model, image)
    small = fit_to_input(image, model.input_size)  # (h, w, 3)
    rng = np.random.default_rng([seed, 99])
    return Worksheet(name, small, _pixels(model, stages, small, seed), _conv(model, stages, small, seed),
                     _activation(stages, rng), _pool(stages, rng), _softmax(model, stages))


def _pixels(model, stages, small, seed) -> Pixels:
    q = Q.generate(1, model, stages, small, seed)
    h, w = small.shape[:2]
    i, j = q.data["row"], q.data["col"]
    top, left = min(max(i - 1, 0), h - 3), min(max(j - 1, 0), w - 3)
    return Pixels(top, left, small[top:top + 3, left:left + 3].copy(), i, j, q)


def _conv(model, stages, small, seed) -> Conv:
    q = Q.generate(2, model, stages, small, seed)  # the same filter and window as the step 2 question
    d = q.data
    x, wt, b = printed(d["window"], HAND), printed(d["weight"], HAND), float(printed(d["bias"], HAND))
    products = x * wt  # (C, kh, kw)
    total = float(L.conv2d(x[None], wt[None], np.array([b]))[0, 0, 0, 0])
    return Conv(d["stage"], d["filter"], d["row"], d["col"], d["top"], d["left"], x, wt, b, products,
                products.sum(axis=(1, 2)), total, float(q.answer))


def _activation(stages, rng) -> Activation:
    k = Q.first_stage(stages, L.ACTIVATIONS, Q.first_stage(stages, ("conv",)))
    layer, x = stages[k].layer, stages[k - 1].output
    c, i, j = Q.pick_row(x, ROW, rng, "{:.2f}")  # MAP decimals
    values = printed(x[c, i, j:j + ROW], MAP)  # (ROW,)
    out = layer(values[None, None, None, :])[0, 0, 0]
    return Activation(layer.name, stages[k - 1].name, layer.kind, c, i, j, values, printed(out, MAP))


def _pool(stages, rng) -> Pool:
    k = Q.first_stage(stages, ("maxpool", "avgpool"))
    layer, x = stages[k].layer, stages[k - 1].output  # x (C, H, W)
    size, _, stride, _ = L.KINDS[layer.kind].geometry(layer.params, layer.options)
    if stride != size:
        raise Q.NoQuestion("the worksheet's grid needs pooling windows that do not overlap")
    C, Ho, Wo = stages[k].output.shape
    best, score = (0, 0, 0), (-1, -1)
    for _ in range(Q.TRIES):  # four windows whose kept numbers are all different and not 0
        c, i, j = int(rng.integers(C)), int(rng.integers(Ho - 1)), int(rng.integers(Wo - 1))
        kept = stages[k].output[c, i:i + 2, j:j + 2]
        now = (len({fmt(v, MAP) for v in kept.ravel()} - {fmt(0, MAP)}),
               len({fmt(v, MAP) for v in x[c, i * size:(i + 2) * size, j * size:(j + 2) * size].ravel()}))
        if now > score:
            best, score = (c, i, j), now
        if now == (4, 4 * size * size):
            break
    c, i, j = best
    top, left = i * size, j * size
    grid = printed(x[c, top:top + 2 * size, left:left + 2 * size], MAP)
    out = layer(grid[None, None])[0, 0]  # (2, 2)
    return Pool(layer.name, stages[k - 1].name, layer.kind, size, c, top, left, grid, printed(out, MAP))


def _softmax(model, stages) -> Softmax:
    d = max(k for k, s in enumerate(stages) if s.kind == "dense")
    z = stages[d].output.astype(np.float64)  # (K,)
    top = [int(k) for k in np.argsort(-z, kind="stable")[:3]]
    scores = printed(z[top], HAND)
    shifted = scores - scores.max()
    probs = L.softmax(z)  # (K,) the network's own shares
    return Softmax(tuple(model.classes[k] for k in top), scores, shifted, np.exp(shifted), L.softmax(scores),
                   tuple((model.classes[k], float(probs[k])) for k in top))


# ---------------------------------------------------------------- drawing


class Page:
    """One A4 page drawn in millimetres from the top-left corner."""

    def __init__(self):
        self.fig = Figure(figsize=(A4[0] * MM, A4[1] * MM))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, A4[0])
        self.ax.set_ylim(A4[1], 0)
        self.ax.axis("off")

    def text(self, x, y, s, size=10, **kw):
        self.ax.text(x, y, s, fontsize=size, va="baseline", color="black", **kw)

    def para(self, x, y, s, width=180.0, size=10, gap=1.45) -> float:
        """Text wrapped to `width` mm from (x, y) -> the y below it."""
        chars = int(width / (size * 0.3528 * 0.53))  # DejaVu Sans averages about 0.5 em a character
        for line in textwrap.wrap(s, chars):
            self.text(x, y, line, size)
            y += size * 0.3528 * gap
        return y

    def heading(self, y, s) -> float:
        self.text(15, y, s, 12.5, weight="bold")
        return y + 7

    def grid(self, x, y, cells, cw=9.0, ch=7.0, size=9, shade=None, mark=None, split=None):
        """Cells of text (a 2-D list; "" is a blank to fill in) with their top-left at (x, y).

        shade: cells to fill light grey; mark: one (row, col) drawn with a thick border; split: draw
        thick lines every `split` cells (the pooling windows).
        """
        rows, cols = len(cells), len(cells[0])
        for r in range(rows):
            for c in range(cols):
                grey = shade is not None and shade[r][c]
                self.ax.add_patch(Rectangle((x + c * cw, y + r * ch), cw, ch, facecolor="0.88" if grey else "white",
                                            edgecolor="black", linewidth=0.6))
                if cells[r][c] != "":
                    self.ax.text(x + (c + 0.5) * cw, y + (r + 0.5) * ch, cells[r][c], fontsize=size,
                                 ha="center", va="center", color="black", linespacing=1.15)
        if mark is not None:
            r, c = mark
            self.ax.add_patch(Rectangle((x + c * cw, y + r * ch), cw, ch, fill=False, edgecolor="black",
                                        linewidth=2.2))
        if split:
            for k in range(0, rows + 1, split):
                self.ax.plot([x, x + cols * cw], [y + k * ch] * 2, color="black", linewidth=2)
            for k in range(0, cols + 1, split):
                self.ax.plot([x + k * cw] * 2, [y, y + rows * ch], color="black", linewidth=2)
        return y + rows * ch

    def picture(self, x, y, size, rgb, box):
        """The small picture, size mm square, with the window `box` (top, left, bottom, right) framed."""
        ax = self.fig.add_axes((x / A4[0], 1 - (y + size) / A4[1], size / A4[0], size / A4[1]))
        h, w = rgb.shape[:2]
        ax.imshow(rgb, interpolation="nearest", extent=(0.5, w + 0.5, h + 0.5, 0.5))
        t, left, b, r = box
        for colour, width, style in (("black", 2.4, "-"), ("white", 1.0, "--")):  # visible on any colour
            ax.add_patch(Rectangle((left + 0.5, t + 0.5), r - left, b - t, fill=False, edgecolor=colour,
                                   linewidth=width, linestyle=style))
        ax.set_xticks([1, w], ["column 1", f"column {w}"], fontsize=7)
        ax.set_yticks([1, h], ["row 1", f"row {h}"], fontsize=7)
        ax.tick_params(length=2, pad=1)


def draw(ws: Worksheet) -> list[Figure]:
    """The sheet: two pages of exercises and one page of answers."""
    return [_page_one(ws), _page_two(ws), _page_key(ws)]


def _page_one(ws: Worksheet) -> Figure:
    p = Page()
    p.text(15, 18, "How a network sees a picture: worksheet", 17, weight="bold")
    y = p.para(15, 26, f"Picture: {ws.name or 'your picture'}, as the network sees it ({ws.small.shape[1]} by "
               f"{ws.small.shape[0]} pixels). Rows and columns count from 1, starting at the top left. "
               "You may use a calculator.", 180, 9.5)
    p.text(15, y + 3, "Name: ________________________", 10)

    y = p.heading(y + 14, "1. Read the pixels")
    px = ws.pixels
    p.picture(15, y, 48, ws.small, (px.top, px.left, px.top + 3, px.left + 3))
    cells = [[f"red {v[0]}\ngreen {v[1]}\nblue {v[2]}" for v in row] for row in px.pixels]
    gx = 95
    for c in range(3):
        p.text(gx + 12 + c * 24, y + 3, f"column {px.left + c + 1}", 8.5, ha="center")
    for r in range(3):
        p.text(gx - 2, y + 14 + r * 16, f"row {px.top + r + 1}", 8.5, ha="right")
    p.grid(gx, y + 5, cells, cw=24, ch=16, size=9, mark=(px.row - px.top, px.col - px.left))
    y += 58
    y = p.para(15, y, "The framed square on the picture is the 3 by 3 window of pixels in the table; every pixel is "
               "three numbers from 0 to 255: how much red, green and blue light it has.", 180, 9.5)
    y = p.para(15, y + 2, f"a) Copy the numbers of the framed pixel, row {px.row + 1}, column {px.col + 1}:", 180, 10)
    y = p.para(20, y + 1, "red ________     green ________     blue ________", 180, 10)
    q = px.question
    ask = "Which colour is it?" if q.choices[0] == "red" and len(q.choices) == 6 else \
        "Which colour of light does it have most of?"
    y = p.para(15, y + 2, f"b) {ask} Circle one:   " + "    ".join(q.choices), 180, 10)

    cv = ws.conv
    C, kh, kw = cv.window.shape
    y = p.heading(y + 8, "2. Slide a filter (convolution)")
    y = p.para(15, y, f"Filter {cv.filter + 1} of {cv.layer} has a {kh} by {kw} grid of numbers for each colour. It "
               f"sits on the window of the picture at rows {cv.top + 1} to {cv.top + kh}, columns {cv.left + 1} "
               f"to {cv.left + kw} (the colours as the network scales them, rounded to {HAND} decimal). Multiply each "
               "window number by the filter number in the same place and write the products. Add them up for "
               "each colour, then add the sums and the bias.", 180, 9.5)
    cw, ch = 9.0, 7.0
    xs = (33, 33 + kw * cw + 8, 33 + 2 * (kw * cw + 8), 33 + 3 * (kw * cw + 8) + 4)
    y += 3
    for x, label in zip(xs, ("window", "filter", "products", "sum")):
        p.text(x, y, label, 9, weight="bold")
    y += 2
    names = COLOUR_WORDS if C == 3 else tuple(f"map {c + 1}" for c in range(C))
    for c in range(C):
        p.text(15, y + kh * ch / 2 + 1.5, names[c], 10)
        p.grid(xs[0], y, [[fmt(v, HAND) for v in row] for row in cv.window[c]], cw, ch, shade=_all(kh, kw))
        p.text(xs[1] - 5.5, y + kh * ch / 2 + 1.5, "×", 12)
        p.grid(xs[1], y, [[fmt(v, HAND) for v in row] for row in cv.weight[c]], cw, ch, shade=_all(kh, kw))
        p.text(xs[2] - 5.5, y + kh * ch / 2 + 1.5, "→", 12)
        p.grid(xs[2], y, [[""] * kw for _ in range(kh)], cw, ch)
        p.text(xs[3] - 6, y + kh * ch / 2 + 1.5, "→", 12)
        p.grid(xs[3], y + (kh - 1) * ch / 2, [[""]], 20, ch)
        y += kh * ch + 4
        if y > 270 and c < C - 1:  # more input maps than fit: the rest are left out
            p.text(15, y + 3, f"(and {C - c - 1} more maps)", 9)
            break
    p.text(15, y + 6, f"Sum of the {C} sums  +  bias ({fmt(cv.bias, HAND)})  =  ______________", 10.5)
    return p.fig


def _signed(s: str) -> str:
    """'-1.13' -> '(-1.13)', so that a sum reads '0.32 + (-1.13)'."""
    return f"({s})" if s.startswith("-") else s


def _all(rows, cols):
    return [[True] * cols for _ in range(rows)]


def _page_two(ws: Worksheet) -> Figure:
    p = Page()
    a = ws.activation
    title = L.KINDS[a.kind].title
    y = p.heading(18, f"3. {title}")
    what = ("keeps every number above 0 as it is and turns every negative number into 0" if a.kind == "relu"
            else L.KINDS[a.kind].describe[0].lower() + L.KINDS[a.kind].describe[1:].rstrip("."))
    y = p.para(15, y, f"{title} {what}. These {ROW} numbers are from map {a.map + 1} of {a.source}, row {a.row + 1}, "
               f"columns {a.col + 1} to {a.col + ROW}. Write what comes out of {title} under each one.", 180, 9.5)
    y += 3
    p.text(15, y + 5.5, "in", 10)
    p.text(15, y + 13.5, "out", 10)
    p.grid(28, y, [[fmt(v, MAP) for v in a.values], [""] * ROW], 18, 8, 10, shade=[[True] * ROW, [False] * ROW])
    y += 26

    pl = ws.pool
    s = pl.size
    title = L.KINDS[pl.kind].title
    rule = "the largest number" if pl.kind == "maxpool" else "the average"
    y = p.heading(y + 4, f"4. {title[0].upper()}{title[1:]}")
    y = p.para(15, y, f"{title[0].upper()}{title[1:]} keeps {rule} of each {s} by {s} window, so the map gets smaller. "
               f"Here are four windows of map {pl.map + 1} of {pl.source} (rows {pl.top + 1} to {pl.top + 2 * s}, "
               f"columns {pl.left + 1} to {pl.left + 2 * s}), with thick lines between them. Write what it keeps "
               "from each window in the small grid.", 180, 9.5)
    y += 3
    n = 2 * s
    p.grid(28, y, [[fmt(v, MAP) for v in row] for row in pl.grid], 15, 8, 10, shade=_all(n, n), split=s)
    p.text(28 + n * 15 + 8, y + n * 4 + 1.5, "→", 14)
    p.grid(28 + n * 15 + 20, y + n * 4 - 8, [["", ""], ["", ""]], 15, 8, 10)
    y += n * 8 + 8

    sm = ws.softmax
    y = p.heading(y + 4, "5. Softmax")
    y = p.para(15, y, "Softmax turns scores into shares of 100%. Here are the network's three highest scores; "
               "share 100% between these three only. Subtract the largest score from each score, take e to the "
               "power of that (the eˣ key; e is about 2.718), add up the three results, then divide each result "
               "by the total.", 180, 9.5)
    y += 3
    rows = [["", *sm.classes], ["score", *(fmt(v, HAND) for v in sm.scores)], ["score − largest", "", "", ""],
            ["e to that", "", "", ""], ["share", "", "", ""]]
    shade = [[True] * 4, [True] * 4, [True, False, False, False], [True, False, False, False],
             [True, False, False, False]]
    y = p.grid(15, y, rows, 34, 8, 10, shade=shade)
    p.text(15, y + 8, "Total of the three “e to that” numbers: __________      Which class wins? __________", 10)
    return p.fig


def _page_key(ws: Worksheet) -> Figure:
    p = Page()
    p.text(15, 18, "Answer key", 17, weight="bold")
    y = p.para(15, 26, f"Picture: {ws.name or 'your picture'}. Every answer is what the network's layers compute from "
               "the numbers printed on the sheet.", 180, 9.5)
    px, q = ws.pixels, ws.pixels.question
    r, g, b = (int(v) for v in px.pixels[px.row - px.top, px.col - px.left])
    y = p.heading(y + 5, "1. Read the pixels")
    y = p.para(15, y, f"a) Row {px.row + 1}, column {px.col + 1}: red {r}, green {g}, blue {b}.", 180, 10)
    y = p.para(15, y, f"b) {q.reason}", 180, 10)

    cv = ws.conv
    C, kh, kw = cv.window.shape
    y = p.heading(y + 5, "2. Slide a filter")
    x = 15
    for c in range(min(C, 3)):
        name = COLOUR_WORDS[c] if C == 3 else f"map {c + 1}"
        p.text(x, y + 3, f"{name} products", 9, weight="bold")
        end = p.grid(x, y + 5, [[fmt(v, 2 * HAND) for v in row] for row in cv.products[c]], 14, 7, 9.5)
        p.text(x, end + 5, f"sum {fmt(cv.sums[c], 2 * HAND)}", 10)
        x += kw * 14 + 14
    y = end + 11
    sums = " + ".join(_signed(fmt(v, 2 * HAND)) for v in cv.sums)
    y = p.para(15, y, f"{sums} + bias {_signed(fmt(cv.bias, HAND))} = {fmt(cv.total, 2 * HAND)}", 180, 10.5)
    y = p.para(15, y, f"With all their decimals the network gets {fmt(cv.network, 2)} here: the number at row "
               f"{cv.row + 1}, column {cv.col + 1} of feature map {cv.filter + 1} of {cv.layer}. Rounding the "
               f"numbers to {HAND} decimal moved the answer by {abs(cv.network - cv.total):.2f}.", 180, 9.5)

    a = ws.activation
    y = p.heading(y + 5, f"3. {L.KINDS[a.kind].title}")
    y = p.grid(28, y, [[fmt(v, MAP) for v in a.values], [fmt(v, MAP) for v in a.out]], 18, 8, 10,
               shade=[[True] * ROW, [False] * ROW])
    y += 4

    pl = ws.pool
    y = p.heading(y + 5, f"4. {L.KINDS[pl.kind].title[0].upper()}{L.KINDS[pl.kind].title[1:]}")
    end = p.grid(28, y, [[fmt(v, MAP) for v in row] for row in pl.out], 15, 8, 10)
    p.para(68, y + 5, f"These are the numbers at rows {pl.top // pl.size + 1} to {pl.top // pl.size + 2}, columns "
           f"{pl.left // pl.size + 1} to {pl.left // pl.size + 2} of map {pl.map + 1} of {pl.layer}.", 120, 9.5)
    y = end + 4

    sm = ws.softmax
    y = p.heading(y + 5, "5. Softmax")
    rows = [["", *sm.classes], ["score", *(fmt(v, HAND) for v in sm.scores)],
            ["score − largest", *(fmt(v, HAND) for v in sm.shifted)],
            ["e to that", *(f"{v:.3f}" for v in sm.exps)], ["share", *(f"{v:.0%}" for v in sm.shares)]]
    y = p.grid(15, y, rows, 34, 8, 10)
    y = p.para(15, y + 6, f"Total {sm.exps.sum():.3f}. {sm.classes[0]} wins. Shared among all its classes, the "
               "network gives " + ", ".join(f"{c} {v:.0%}" for c, v in sm.network) + ".", 180, 10)
    return p.fig


def write_pdf(figures, out) -> None:
    """Figures -> one PDF in `out` (a path or a binary file object), with no date in it (same input, same bytes)."""
    with matplotlib.rc_context(RC), PdfPages(out, metadata={"CreationDate": None, "Creator": "cnnviz"}) as pdf:
        for fig in figures:
            pdf.savefig(fig)


def worksheet_pdf(model: Model, image: np.ndarray, name: str = "", seed: int = 0) -> bytes:
    """The whole sheet for one uint8 (H, W, 3) picture, as PDF bytes."""
    with matplotlib.rc_context(RC):  # fonts are chosen when the text is laid out, so set it while drawing
        figures = draw(worksheet(model, image, name, seed))
    buf = io.BytesIO()
    write_pdf(figures, buf)
    return buf.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnviz.handout", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sample", help=f"a sample picture: {', '.join(sample_names())}")
    which.add_argument("--picture", type=Path, help="a picture file of your own")
    parser.add_argument("--out", type=Path, required=True, help="the PDF to write")
    parser.add_argument("--model", type=Path, help="a model file (default: the shipped network)")
    parser.add_argument("--seed", type=int, default=0, help="another seed picks other places on the picture")
    args = parser.parse_args(argv)
    if args.sample is not None and sample_path(args.sample) is None:
        parser.error(f"no sample called {args.sample!r}; try one of: {', '.join(sample_names())}")
    image = load_image(sample_path(args.sample) if args.sample else args.picture)
    name = args.sample or args.picture.stem
    args.out.write_bytes(worksheet_pdf(load_model(args.model), image, name, args.seed))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
