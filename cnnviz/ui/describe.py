"""Words for pictures: the alt text of every picture the walkthrough draws, and its numbers as a table.

A screen reader cannot see a map's colours or read the numbers painted into a grid picture, so each
picture gets a sentence built from the same arrays it was drawn from ("Feature map of filter 3 of
conv1_1, 32 by 32; largest value 4.60 at row 12, column 7; ..."), and every picture of numbers gets
those numbers as an HTML table that only screen readers see (class "sr-only", styled in common.py).
Rows, columns, maps and filters count from 1, as everywhere a student reads them.

Plain functions of arrays: no Streamlit, so tests can call them directly.
"""

from __future__ import annotations

import html

import numpy as np

SR_ONLY = "sr-only"  # the visually hidden class (common.A11Y_CSS)
ROUND = "{:.2f}"  # how a map's numbers are written unless the page shows them otherwise


def where(i: int, j: int) -> str:
    """0-based (i, j) -> 'row i+1, column j+1'."""
    return f"row {i + 1}, column {j + 1}"


def size(shape) -> str:
    """(H, W) -> '32 by 32' (rows by columns, as the grids are read)."""
    return f"{shape[0]} by {shape[1]}"


def extremes(a: np.ndarray, fmt: str = ROUND) -> str:
    """'largest value 4.60 at row 12, column 7; smallest -3.10 at row 2, column 5' for a (H, W) array."""
    hi = np.unravel_index(int(np.argmax(a)), a.shape)
    lo = np.unravel_index(int(np.argmin(a)), a.shape)
    return (f"largest value {fmt.format(float(a[hi]))} at {where(*hi)}; "
            f"smallest {fmt.format(float(a[lo]))} at {where(*lo)}")


def describe_map(a: np.ndarray, what: str, fmt: str = ROUND, mark=None, box=None, box_name: str = "window") -> str:
    """A signed map (H, W) drawn in the diverging colours.

    mark: 0-based (row, col) of an outlined cell; box: (row0, col0, row1, col1), end exclusive, of an
    outlined `box_name`. Both are said in words, with the marked cell's value.
    """
    text = f"{what}, {size(a.shape)}; {extremes(a, fmt)}"
    if mark is not None:
        i, j = mark
        text += f"; the cell at {where(i, j)} ({fmt.format(float(a[i, j]))}) is outlined"
    if box is not None:
        text += f"; {describe_box(box, box_name)} is outlined"
    return text


def describe_box(box, name: str = "window") -> str:
    """(row0, col0, row1, col1), end exclusive -> 'the 3 by 3 window at rows 4 to 6, columns 7 to 9'."""
    r0, c0, r1, c1 = (int(v) for v in box)
    rows = f"row {r0 + 1}" if r1 - r0 == 1 else f"rows {r0 + 1} to {r1}"
    cols = f"column {c0 + 1}" if c1 - c0 == 1 else f"columns {c0 + 1} to {c1}"
    return f"the {r1 - r0} by {c1 - c0} {name} at {rows}, {cols}"


def describe_picture(rgb: np.ndarray, what: str, box=None, mark=None, box_name: str = "window") -> str:
    """A colour picture uint8 (H, W, 3): its size in pixels and its average colour (and an outlined part).

    The average of a big photo is taken over every k-th row and column (at most about 256 of each): the
    same colour to the nearest unit or two, without averaging millions of numbers on every rerun."""
    h, w = rgb.shape[:2]
    every = rgb[::max(1, h // 256), ::max(1, w // 256), :3]
    r, g, b = (round(float(v)) for v in every.reshape(-1, 3).mean(0))
    text = f"{what}, {w} pixels wide and {h} high; average colour red {r}, green {g}, blue {b}"
    if mark is not None:
        i, j = mark
        pr, pg, pb = (int(v) for v in rgb[i, j])
        text += f"; the pixel at {where(i, j)} (red {pr}, green {pg}, blue {pb}) is outlined"
    if box is not None:
        text += f"; {describe_box(box, box_name)} is outlined"
    return text


def describe_plane(rgb: np.ndarray, channel: int) -> str:
    """One colour plane of a uint8 (H, W, 3) picture, drawn in its own colour."""
    name = ("red", "green", "blue")[channel]
    a = rgb[..., channel].astype(np.int64)
    return (f"The {name} numbers of the {size(a.shape)} picture as shades of {name}; "
            f"{extremes(a, '{:.0f}')}; average {a.mean():.0f} of 255")


def describe_numbers(values: np.ndarray, what: str, fmt: str = ROUND, mark=None) -> str:
    """A grid picture with its numbers written in (the numbers themselves are in its table)."""
    text = (f"{what}: {size(values.shape)} numbers from {fmt.format(float(values.min()))} "
            f"to {fmt.format(float(values.max()))}")
    if mark is not None:
        i, j = mark
        text += f"; the one at {where(i, j)} ({fmt.format(float(values[i, j]))}) is framed"
    return text


def describe_legend(vmax: float, vmin: float | None = None) -> str:
    """The colour bar under the maps."""
    vmin = -vmax if vmin is None else vmin
    return (f"Colour scale: dark blue for {vmin:.3g}, white for {(vmin + vmax) / 2:.3g}, "
            f"dark red for {vmax:.3g}")


def describe_bars(labels, values, what: str, fmt: str = "{:.1%}", limit: int = 10) -> str:
    """A bar chart: every bar's name and number, in the chart's order (the first `limit` of them)."""
    parts = [f"{name} {fmt.format(float(v))}" for name, v in zip(labels, values)]
    more = f", and {len(parts) - limit} more" if len(parts) > limit else ""
    return f"{what}: " + ", ".join(parts[:limit]) + more


def describe_histogram(values: np.ndarray, edges: np.ndarray, what: str) -> str:
    """How many of `values` fall below, at and above 0, on the histogram's range."""
    v = np.asarray(values).ravel()
    neg, zero, pos = int(np.sum(v < 0)), int(np.sum(v == 0)), int(np.sum(v > 0))
    return (f"{what}: bars counting {v.size:,} numbers from {edges[0]:.3g} to {edges[-1]:.3g}; "
            f"{neg:,} below 0, {zero:,} exactly 0, {pos:,} above 0")


def describe_curve(name: str, xs: np.ndarray, ys: np.ndarray) -> str:
    """A function's curve: what comes out at both ends and at 0."""
    mid = float(np.interp(0.0, xs, ys))
    return (f"The {name} curve: number in from {xs[0]:.3g} to {xs[-1]:.3g} along the bottom, number out up "
            f"the side; {xs[0]:.3g} gives {ys[0]:.3g}, 0 gives {mid:.3g}, {xs[-1]:.3g} gives {ys[-1]:.3g}")


def describe_filters(w: np.ndarray, maps: np.ndarray, layer: str) -> str:
    """The mosaic of a conv layer's filters (F, C, KH, KW), each beside its map (F, H, W)."""
    F, C, KH, KW = w.shape
    peaks = maps.reshape(F, -1).max(1)
    best = int(np.argmax(peaks))
    return (f"All {F} filters of {layer} ({KH} by {KW} for each of {C} colours, drawn as small colour "
            f"squares), each beside the {size(maps.shape[1:])} feature map it makes from this picture, "
            f"all on one colour scale; the strongest is filter {best + 1} (largest value "
            f"{peaks[best]:.2f}), the weakest filter {int(np.argmin(peaks)) + 1} (largest value "
            f"{peaks.min():.2f})")


def describe_thumbnails(maps: np.ndarray, chosen: int, layer: str) -> str:
    """Every map of a layer (C, H, W) small, `chosen` framed."""
    return (f"All {len(maps)} maps of {layer}, small, numbered 1 to {len(maps)}, each on its own colour "
            f"scale; map {chosen + 1} is framed")


def describe_mosaic(maps: np.ndarray, layer: str, box=None, framed: int | None = None) -> str:
    """The input maps (C, H, W) of a close-up, each with the window outlined, map `framed` framed."""
    text = f"All {len(maps)} maps of {layer}, {size(maps.shape[1:])} each, on one colour scale"
    if box is not None:
        text += f"; on each, {describe_box(box)} is outlined"
    if framed is not None:
        text += f"; map {framed + 1} is framed"
    return text


def describe_overview(columns, classes, probabilities: np.ndarray) -> str:
    """The whole network in one picture: columns (title, what, array) as in ui/overview.py, and its answer."""
    parts = []
    for title, what, a in columns:
        if what == "picture":
            parts.append(f"{title}: the picture as 3 colour planes of {size(a.shape[:2])}")
        elif what == "maps":
            parts.append(f"{title}: {a.shape[0]} maps of {size(a.shape[1:])}")
        elif what == "scores":
            parts.append(f"{title}: a score for each of {len(a)} classes")
        elif what == "probabilities":
            parts.append(f"{title}: the probabilities")
        else:
            parts.append(f"{title}: a list of {a.size:,} numbers")
    top = int(np.argmax(probabilities))
    return ("The whole network from left to right, one column per stage: " + "; ".join(parts)
            + f". Its answer: {classes[top]}, {float(probabilities[top]):.0%}")


def describe_equation(words: list[str]) -> str:
    """A picture of pictures joined by signs: ['map 3', 'weights for cat', 'products'] -> 'map 3 × ... = ...'."""
    if len(words) < 2:
        return "".join(words)
    return " × ".join(words[:-1]) + " = " + words[-1]


# ---------------------------------------------------------------- numbers as tables


def table_html(cells, caption: str, visible: bool = False) -> str:
    """Rows of cell texts -> an HTML table with a caption, its rows and columns labelled from 1.

    Everything is escaped here. Hidden from sight (class sr-only) unless `visible`, since the picture
    next to it already shows the same numbers to a sighted student.
    """
    rows = [list(r) for r in cells]
    n_cols = max((len(r) for r in rows), default=0)
    head = "".join(f'<th scope="col">column {j + 1}</th>' for j in range(n_cols))
    body = "".join(f'<tr><th scope="row">row {i + 1}</th>'
                   + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for i, r in enumerate(rows))
    cls = "" if visible else f' class="{SR_ONLY}"'
    return (f"<table{cls}><caption>{html.escape(caption)}</caption>"
            f"<thead><tr><td></td>{head}</tr></thead><tbody>{body}</tbody></table>")


def numbers_table(values: np.ndarray, caption: str, fmt: str = ROUND) -> str:
    """A (h, w) grid of numbers as an sr-only table."""
    return table_html([[fmt.format(float(v)) for v in row] for row in values], caption)


def products_table(window: np.ndarray, kernel: np.ndarray, caption: str, fmt: str = ROUND) -> str:
    """window (h, w) × kernel (h, w): each cell 'window × filter = product', as an sr-only table."""
    cells = [[f"{fmt.format(float(x))} × {fmt.format(float(k))} = {fmt.format(float(x * k))}"
              for x, k in zip(xr, kr)] for xr, kr in zip(window, kernel)]
    return table_html(cells, caption)


def list_table(labels, values, caption: str, fmt: str = "{:.1%}", header=("name", "value")) -> str:
    """Named numbers (a bar chart's bars) as an sr-only table of two columns."""
    head = f'<tr><th scope="col">{html.escape(header[0])}</th><th scope="col">{html.escape(header[1])}</th></tr>'
    body = "".join(f'<tr><th scope="row">{html.escape(str(n))}</th><td>{html.escape(fmt.format(float(v)))}</td></tr>'
                   for n, v in zip(labels, values))
    return (f'<table class="{SR_ONLY}"><caption>{html.escape(caption)}</caption>'
            f"<thead>{head}</thead><tbody>{body}</tbody></table>")


# ---------------------------------------------------------------- the training pages and the sidebar


def describe_curves(title: str, series, x_max: float, fmt: str = "{:.2f}") -> str:
    """A training chart: series = [(label, xs, ys, colour), ...] as render.curves draws them, up to step x_max."""
    parts = []
    for label, xs, ys, _ in series:
        pts = [(x, y) for x, y in zip(xs, ys) if np.isfinite(y)]
        if not pts:
            parts.append(f"{label}: nothing yet")
        elif len(pts) == 1:
            parts.append(f"{label}: {fmt.format(pts[0][1])} at step {pts[0][0]:.0f}")
        else:
            parts.append(f"{label}: from {fmt.format(pts[0][1])} at step {pts[0][0]:.0f} "
                         f"to {fmt.format(pts[-1][1])} at step {pts[-1][0]:.0f}")
    return f"{title}, steps 0 to {x_max:.0f}: " + "; ".join(parts)


def describe_filter_mosaic(w: np.ndarray, what: str) -> str:
    """First-layer filters (F, 3, KH, KW) drawn as small colour squares."""
    F, _, KH, KW = w.shape
    return f"{what}: {F} filters, each drawn as a {KH} by {KW} square whose colours show its numbers"


def describe_samples(names, what: str, per_class: int | None = None) -> str:
    """A picture of example pictures: one tile for each name, or (per_class) a row of that many for each."""
    kinds = ", ".join(str(n) for n in names)
    if per_class is None:
        return f"{what}: {len(names)} pictures, {kinds}"
    return f"{what}: {per_class} of each of {len(names)} classes, {kinds}"


def describe_verdicts(truth, guesses, right) -> str:
    """Held-out pictures and what a network says: parallel lists of true class, guess and right or wrong."""
    parts = [f"{k + 1}: a {t}, it says {g}, {'right' if ok else 'wrong'}"
             for k, (t, g, ok) in enumerate(zip(truth, guesses, right))]
    return (f"{len(parts)} pictures, each with a tick and the word right (blue frame) or a cross and the word "
            "wrong (orange frame): " + "; ".join(parts))
