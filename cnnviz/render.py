"""Arrays -> crisp PIL images: colour maps, pixel grids with numbers, mosaics, bar charts.

Everything is drawn at its final size with NEAREST upscaling, so a 32x32 map
stays a grid of sharp squares in the browser (send it as PNG, not JPEG).
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# ColorBrewer RdBu, reversed: negative blue, zero near-white, positive red.
_DIVERGING = np.array([
    [5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
    [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]], np.float64)
# A perceptually even dark-to-light ramp (viridis key colours) for values that have no sign.
_SEQUENTIAL = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137],
    [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]], np.float64)
CHANNEL_TINTS = {"R": (255, 0, 0), "G": (0, 170, 0), "B": (0, 90, 255)}


def _lut(stops: np.ndarray, n: int = 256) -> np.ndarray:
    t = np.linspace(0, len(stops) - 1, n)
    i = np.minimum(t.astype(int), len(stops) - 2)
    f = (t - i)[:, None]
    return np.round(stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)  # (n, 3)


DIVERGING_LUT = _lut(_DIVERGING)
SEQUENTIAL_LUT = _lut(_SEQUENTIAL)


def symmetric_limit(a: np.ndarray) -> float:
    """The colour-scale limit for a signed map: its largest absolute value (never 0)."""
    m = float(np.max(np.abs(a))) if np.size(a) else 0.0
    return m if np.isfinite(m) and m > 0 else 1.0


def diverging(a: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Signed values (H, W) -> uint8 RGB (H, W, 3): blue below zero, white at zero, red above.

    The scale runs from -vmax to +vmax (default: the map's own largest |value|),
    so equal colours mean equal numbers when several maps share one vmax.
    """
    vmax = symmetric_limit(a) if vmax is None else vmax
    t = np.clip((np.nan_to_num(a) / vmax + 1) / 2, 0, 1)
    return DIVERGING_LUT[np.round(t * 255).astype(np.intp)]


def sequential(a: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Values (H, W) -> uint8 RGB (H, W, 3) on a dark-to-light scale from vmin to vmax."""
    vmin = float(np.min(a)) if vmin is None else vmin
    vmax = float(np.max(a)) if vmax is None else vmax
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.nan_to_num(a) - vmin) / span, 0, 1)
    return SEQUENTIAL_LUT[np.round(t * 255).astype(np.intp)]


def channel_plane(rgb: np.ndarray, channel: int) -> np.ndarray:
    """One channel of a uint8 (H, W, 3) picture shown in its own colour: (H, W, 3), black where 0."""
    tint = np.array(list(CHANNEL_TINTS.values())[channel], np.float32) / 255
    return np.round(rgb[..., channel:channel + 1].astype(np.float32) * tint).astype(np.uint8)


def upscale(rgb: np.ndarray, width: int) -> Image.Image:
    """uint8 (H, W, 3) -> PIL image `width` pixels wide (nearest neighbour: every cell a sharp square)."""
    h, w = rgb.shape[:2]
    scale = max(1, round(width / w))
    return Image.fromarray(np.ascontiguousarray(rgb)).resize((w * scale, h * scale), Image.Resampling.NEAREST)


def outline(img: Image.Image, box, grid_shape, color=(255, 200, 0), width: int = 3) -> Image.Image:
    """Draw the rectangle `box` = (row0, col0, row1, col1) (cells, end exclusive) on an upscaled grid image."""
    img = img.copy()
    sy, sx = img.height / grid_shape[0], img.width / grid_shape[1]
    r0, c0, r1, c1 = box
    ImageDraw.Draw(img).rectangle([c0 * sx, r0 * sy, c1 * sx - 1, r1 * sy - 1], outline=color, width=width)
    return img


def mark_cells(img: Image.Image, mask: np.ndarray, color=(90, 90, 90)) -> Image.Image:
    """Put a small dot in every cell where `mask` (H, W) is true, on an upscaled grid image."""
    img = img.copy()
    d = ImageDraw.Draw(img)
    sy, sx = img.height / mask.shape[0], img.width / mask.shape[1]
    r = max(1.0, min(sx, sy) / 6)
    for i, j in zip(*np.nonzero(mask)):
        cx, cy = (j + 0.5) * sx, (i + 0.5) * sy
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    return img


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_color(bg) -> tuple:
    r, g, b = (int(v) for v in bg[:3])
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def number_grid(values: np.ndarray, colors: np.ndarray | None = None, cell: int = 44, fmt: str = "{:.2f}",
                highlight=None) -> Image.Image:
    """A table picture: values (h, w) written in cells coloured by `colors` (h, w, 3) uint8.

    `highlight` = (row, col) draws a thick border round one cell.
    Drawn once per look (texts, colours, size): writing text is the slow part, and a class sees the same
    windows again and again. Each call gets its own copy.
    """
    h, w = values.shape
    if colors is None:
        colors = np.full((h, w, 3), 250, np.uint8)
    texts = tuple(tuple(fmt.format(v) for v in row) for row in values)
    colors = np.ascontiguousarray(colors, np.uint8)
    mark = None if highlight is None else (int(highlight[0]), int(highlight[1]))
    return _number_grid(texts, colors.tobytes(), colors.shape, cell, mark).copy()


@lru_cache(maxsize=128)
def _number_grid(texts: tuple, colors_bytes: bytes, colors_shape: tuple, cell: int, highlight) -> Image.Image:
    h, w = len(texts), len(texts[0]) if texts else 0
    colors = np.frombuffer(colors_bytes, np.uint8).reshape(colors_shape)
    img = Image.new("RGB", (w * cell + 1, h * cell + 1), (255, 255, 255))
    d = ImageDraw.Draw(img)
    longest = max((len(t) for row in texts for t in row), default=1)
    f = font(max(8, min(cell // 3, int(cell * 1.6 / max(1, longest)))))
    for i in range(h):
        for j in range(w):
            box = [j * cell, i * cell, (j + 1) * cell, (i + 1) * cell]
            d.rectangle(box, fill=tuple(int(c) for c in colors[i, j]), outline=(170, 170, 170))
            d.text(((j + 0.5) * cell, (i + 0.5) * cell), texts[i][j], fill=_text_color(colors[i, j]),
                   font=f, anchor="mm")
    if highlight is not None:
        i, j = highlight
        d.rectangle([j * cell, i * cell, (j + 1) * cell, (i + 1) * cell], outline=(255, 170, 0), width=4)
    return img


def legend(vmax: float, width: int = 240, height: int = 14, vmin: float | None = None,
           lut: np.ndarray = DIVERGING_LUT) -> Image.Image:
    """A colour bar with its end and middle values written under it."""
    vmin = -vmax if vmin is None else vmin
    bar = lut[np.linspace(0, 255, width).astype(np.intp)][None].repeat(height, 0)  # (height, width, 3)
    img = Image.new("RGB", (width + 40, height + 18), (255, 255, 255))
    img.paste(Image.fromarray(bar), (20, 0))
    d, f = ImageDraw.Draw(img), font(11)
    for x, v in ((20, vmin), (20 + width // 2, (vmin + vmax) / 2), (20 + width, vmax)):
        d.text((x, height + 2), f"{v:.3g}", fill=(40, 40, 40), font=f, anchor="ma")
    return img


def mosaic(images: list, cols: int, pad: int = 4, labels: list | None = None,
           bg=(255, 255, 255), label_size: int = 12) -> Image.Image:
    """Tile same-size PIL images in a grid of `cols` columns, with an optional label under each."""
    if not images:
        return Image.new("RGB", (1, 1), bg)
    w, h = images[0].size
    label_h = 16 if labels else 0
    rows = -(-len(images) // cols)
    out = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad + label_h) + pad), bg)
    d = ImageDraw.Draw(out)
    for k, im in enumerate(images):
        x, y = pad + (k % cols) * (w + pad), pad + (k // cols) * (h + pad + label_h)
        out.paste(im, (x, y))
        if labels:
            d.text((x + w / 2, y + h + 2), str(labels[k]), fill=(40, 40, 40), font=font(label_size), anchor="ma")
    return out


def stack(images: list, pad: int = 8, bg=(255, 255, 255)) -> Image.Image:
    """PIL images one under the other, left-aligned, `pad` pixels apart (they may differ in size)."""
    if not images:
        return Image.new("RGB", (1, 1), bg)
    out = Image.new("RGB", (max(im.width for im in images), sum(im.height for im in images) + pad * (len(images) - 1)),
                    bg)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height + pad
    return out


def bar_chart(labels: list, values: np.ndarray, highlight: int | None = None, width: int = 520,
              bar_h: int = 26, fmt: str = "{:.1%}") -> Image.Image:
    """Horizontal bars, longest first as given; the `highlight` index drawn in a strong colour."""
    n = len(labels)
    f = font(int(bar_h * 0.6))
    value_w = 70
    # room for the longest name (a student's class can be "horizontal stripes"), but never more than half
    label_w = min(width // 2, max([110] + [int(f.getlength(str(name))) + 14 for name in labels]))
    img = Image.new("RGB", (width, n * (bar_h + 6) + 6), (255, 255, 255))
    d = ImageDraw.Draw(img)
    top = max(float(np.max(values)), 1e-12)
    span = width - label_w - value_w
    for k, (name, v) in enumerate(zip(labels, values)):
        y = 6 + k * (bar_h + 6)
        color = (214, 96, 77) if k == highlight else (146, 197, 222)
        d.text((label_w - 8, y + bar_h / 2), str(name), fill=(20, 20, 20), font=f, anchor="rm")
        d.rectangle([label_w, y, label_w + max(1, v / top * span), y + bar_h], fill=color)
        d.text((label_w + max(1, v / top * span) + 6, y + bar_h / 2), fmt.format(v), fill=(20, 20, 20),
               font=f, anchor="lm")
    return img


def png(img: Image.Image) -> bytes:
    """PNG bytes of a PIL image (what st.image should get, so nothing is blurred or recompressed)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def signed_bar_chart(labels: list, values: np.ndarray, highlight: int | None = None, width: int = 520,
                     bar_h: int = 26, fmt: str = "{:+.2f}", label_w: int = 110) -> Image.Image:
    """Horizontal bars that may be negative: a zero line in the middle, red to the right, blue to the left.

    `highlight` (an index) draws that bar darker; values are written at the bar's outer end.
    """
    n = len(labels)
    value_w = 64
    img = Image.new("RGB", (width, n * (bar_h + 6) + 6), (255, 255, 255))
    d, f = ImageDraw.Draw(img), font(int(bar_h * 0.6))
    reach = max(float(np.max(np.abs(values))) if n else 0.0, 1e-12)
    half = (width - label_w - 2 * value_w) / 2
    zero = label_w + value_w + half
    for k, (name, v) in enumerate(zip(labels, values)):
        y = 6 + k * (bar_h + 6)
        strong = k == highlight
        color = ((178, 24, 43) if strong else (244, 165, 130)) if v >= 0 else \
            ((33, 102, 172) if strong else (146, 197, 222))
        end = zero + v / reach * half
        d.text((label_w - 8, y + bar_h / 2), str(name), fill=(20, 20, 20), font=f, anchor="rm")
        d.rectangle([min(zero, end), y, max(zero, end), y + bar_h], fill=color)
        tx, anchor = (end + 6, "lm") if v >= 0 else (end - 6, "rm")
        d.text((tx, y + bar_h / 2), fmt.format(v), fill=(20, 20, 20), font=f, anchor=anchor)
    d.line([zero, 2, zero, img.height - 2], fill=(90, 90, 90), width=1)
    return img


def histogram(values: np.ndarray, edges: np.ndarray, vmax: float, width: int = 300, height: int = 110,
              top: int | None = None) -> Image.Image:
    """Bars counting `values` (any shape) in the bins `edges` (B + 1,), each bar in the diverging colour of
    its bin's middle value (scale -vmax..vmax). `top` fixes the count at full height, so two histograms
    drawn with the same `top` compare bar for bar. Under the bars: the first, middle and last edge."""
    counts, _ = np.histogram(values, edges)  # (B,)
    top = max(1, int(counts.max()) if top is None else top)
    colors = diverging((edges[:-1] + edges[1:]) / 2, vmax)  # (B, 3)
    pad, label_h, top_h = 20, 16, 4
    img = Image.new("RGB", (width + 2 * pad, height + label_h + top_h), (255, 255, 255))
    d, f = ImageDraw.Draw(img), font(11)
    base = top_h + height
    bw = width / len(counts)
    for k, n in enumerate(counts):
        if n:
            x0 = pad + k * bw
            y0 = base - max(1.0, n / top * height)
            d.rectangle([x0, y0, x0 + bw - 1, base], fill=tuple(int(c) for c in colors[k]), outline=(120, 120, 120))
    d.line([pad, base, pad + width, base], fill=(60, 60, 60))
    for x, v in ((pad, edges[0]), (pad + width / 2, (edges[0] + edges[-1]) / 2), (pad + width, edges[-1])):
        d.text((x, base + 3), f"{v:.3g}", fill=(40, 40, 40), font=f, anchor="ma")
    return img


def line_plot(x: np.ndarray, y: np.ndarray, ylim: tuple, width: int = 240, height: int = 160,
              color=(214, 96, 77)) -> Image.Image:
    """A small curve y(x) with both axes drawn through 0 and the x and y limits written at the ends."""
    pad = 26
    img = Image.new("RGB", (width + 2 * pad, height + 2 * pad), (255, 255, 255))
    d, f = ImageDraw.Draw(img), font(11)
    x0, x1, (y0, y1) = float(x[0]), float(x[-1]), ylim

    def to_px(a, b):
        return pad + (a - x0) / (x1 - x0) * width, pad + (y1 - b) / (y1 - y0) * height

    ax_x, ax_y = to_px(0.0, 0.0)
    d.rectangle([pad, pad, pad + width, pad + height], outline=(215, 215, 215))
    if y0 <= 0 <= y1:
        d.line([pad, ax_y, pad + width, ax_y], fill=(120, 120, 120))
    d.line([ax_x, pad, ax_x, pad + height], fill=(120, 120, 120))
    d.line([to_px(a, b) for a, b in zip(x, np.clip(y, y0, y1))], fill=color, width=3)
    d.text((pad, pad + height + 4), f"{x0:.3g}", fill=(40, 40, 40), font=f, anchor="ma")
    d.text((pad + width, pad + height + 4), f"{x1:.3g}", fill=(40, 40, 40), font=f, anchor="ma")
    d.text((ax_x - 4, pad), f"{y1:.3g}", fill=(40, 40, 40), font=f, anchor="ra")
    d.text((ax_x - 4, pad + height), f"{y0:.3g}", fill=(40, 40, 40), font=f, anchor="rd")
    d.text((pad + width - 2, ax_y - 3), "number in", fill=(90, 90, 90), font=f, anchor="rd")
    d.text((ax_x + 4, pad - 4), "number out", fill=(90, 90, 90), font=f, anchor="ld")
    return img


def equation(images: list, operators: list, labels: list | None = None, gap: int = 44,
             font_size: int = 28) -> Image.Image:
    """Pictures in a row joined by operator signs, e.g. [window, kernel, products] with ["×", "="].

    `operators` has one sign fewer than `images`; an optional label is written under each picture.
    The signs ×, =, → and + are drawn as lines, so they show whatever the font lacks.
    """
    lf = font(max(11, font_size // 2))
    label_h = font_size if labels else 0
    slots = [max(im.width, int(lf.getlength(str(labels[k]))) + 4 if labels else 0) for k, im in enumerate(images)]
    h = max(im.height for im in images)
    out = Image.new("RGB", (sum(slots) + gap * (len(images) - 1), h + label_h), (255, 255, 255))
    d = ImageDraw.Draw(out)
    x = 0
    for k, (im, w) in enumerate(zip(images, slots)):
        out.paste(im, (x + (w - im.width) // 2, (h - im.height) // 2))
        if labels:
            d.text((x + w / 2, h + 4), str(labels[k]), fill=(40, 40, 40), font=lf, anchor="ma")
        x += w
        if k < len(operators):
            _operator(d, operators[k], x + gap / 2, h / 2, font_size)
            x += gap
    return out


def _operator(d: ImageDraw.ImageDraw, sign: str, cx: float, cy: float, size: int) -> None:
    r, c, lw = size * 0.3, (40, 40, 40), max(2, size // 10)
    if sign == "×":
        d.line([cx - r, cy - r, cx + r, cy + r], fill=c, width=lw)
        d.line([cx - r, cy + r, cx + r, cy - r], fill=c, width=lw)
    elif sign == "+":
        d.line([cx - r, cy, cx + r, cy], fill=c, width=lw)
        d.line([cx, cy - r, cx, cy + r], fill=c, width=lw)
    elif sign == "=":
        d.line([cx - r, cy - r / 2.5, cx + r, cy - r / 2.5], fill=c, width=lw)
        d.line([cx - r, cy + r / 2.5, cx + r, cy + r / 2.5], fill=c, width=lw)
    elif sign == "→":
        d.line([cx - r * 1.3, cy, cx + r * 0.6, cy], fill=c, width=lw)
        d.polygon([(cx + r * 1.3, cy), (cx + r * 0.3, cy - r * 0.7), (cx + r * 0.3, cy + r * 0.7)], fill=c)
    else:
        d.text((cx, cy), sign, fill=c, font=font(size), anchor="mm")


def curves(series: list, x_max: float, ylim: tuple, title: str, width: int = 420, height: int = 200,
           fmt: str = "{:.2g}") -> Image.Image:
    """Training curves: series = [(label, xs, ys, rgb), ...] on one chart from x = 0 to `x_max`.

    The x axis is fixed in advance, so a run in progress fills the chart from left to right.
    Values outside `ylim` are clipped to its edge; a legend of the labels sits under the title.
    """
    left, right, top, bottom = 48, 16, 46, 26
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d, f = ImageDraw.Draw(img), font(13)
    (y0, y1), x1 = ylim, max(float(x_max), 1e-9)
    pw, ph = width - left - right, height - top - bottom

    def to_px(x, y):
        return left + x / x1 * pw, top + (y1 - min(max(y, y0), y1)) / (y1 - y0) * ph

    d.text((left, 4), title, fill=(20, 20, 20), font=font(16), anchor="la")
    lx = left
    for label, _, _, color in series:
        d.rectangle([lx, 28, lx + 14, 35], fill=color)
        d.text((lx + 18, 32), label, fill=(60, 60, 60), font=f, anchor="lm")
        lx += 30 + int(f.getlength(label))
    for k in range(5):
        y = y0 + (y1 - y0) * k / 4
        py = to_px(0, y)[1]
        d.line([left, py, left + pw, py], fill=(232, 232, 232))
        d.text((left - 4, py), fmt.format(y), fill=(90, 90, 90), font=f, anchor="rm")
    d.rectangle([left, top, left + pw, top + ph], outline=(190, 190, 190))
    d.text((left, top + ph + 4), "0", fill=(90, 90, 90), font=f, anchor="la")
    d.text((left + pw, top + ph + 4), f"step {x_max:.0f}", fill=(90, 90, 90), font=f, anchor="ra")
    for _, xs, ys, color in series:
        pts = [to_px(x, y) for x, y in zip(xs, ys) if np.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=3, joint="curve")
        elif pts:
            (cx, cy), r = pts[0], 3
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    return img
