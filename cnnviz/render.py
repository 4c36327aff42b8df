"""Arrays -> crisp PIL images: colour maps, pixel grids with numbers, mosaics, bar charts, the overview.

Everything is drawn at its final size with NEAREST upscaling, so a 32x32 map
stays a grid of sharp squares in the browser (send it as PNG, not JPEG).
"""

from __future__ import annotations

import io
from functools import lru_cache

import matplotlib  # only its colour tables (matplotlib.colormaps); never pyplot, which is slow to load
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CHANNEL_TINTS = {"R": (255, 0, 0), "G": (0, 170, 0), "B": (0, 90, 255)}


def _lut(name: str, n: int = 256) -> np.ndarray:
    """A matplotlib colormap as a lookup table: uint8 (n, 3), built once when this module loads."""
    return np.round(matplotlib.colormaps[name](np.linspace(0, 1, n))[:, :3] * 255).astype(np.uint8)


# ColorBrewer's RdBu, reversed: negative blue, zero near-white, positive red.
DIVERGING_LUT = _lut("RdBu_r")


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


# Right and wrong: dark blue and dark orange, far apart in lightness, so they stay apart under every kind
# of colour blindness (green and red both turn olive under deuteranopia); white text on both is >= 4.5:1.
RIGHT, WRONG = (33, 102, 172), (179, 88, 6)


def verdict_tile(rgb: np.ndarray, ok: bool, width: int = 96, border: int = 5) -> Image.Image:
    """A picture uint8 (H, W, 3), `width` pixels wide, framed for right or wrong, never by colour alone:
    under it, a band with a tick and the word "right" (blue) or a cross and the word "wrong" (orange)."""
    img = upscale(rgb, width)
    band = 24
    color = RIGHT if ok else WRONG
    out = Image.new("RGB", (img.width + 2 * border, img.height + 2 * border + band), color)
    out.paste(img, (border, border))
    d = ImageDraw.Draw(out)
    cx, cy, r = border + 10, img.height + 2 * border + band / 2 - 2, 5
    if ok:  # a tick, drawn as lines: the default font has no ✓
        d.line([(cx - r, cy), (cx - r / 3, cy + r * 0.8), (cx + r, cy - r)], fill="white", width=3)
    else:
        d.line([(cx - r, cy - r), (cx + r, cy + r)], fill="white", width=3)
        d.line([(cx - r, cy + r), (cx + r, cy - r)], fill="white", width=3)
    d.text((cx + r + 6, cy), "right" if ok else "wrong", fill="white", font=font(14), anchor="lm")
    return out


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


def frame(img: Image.Image, box, color=(255, 140, 0), width: int = 2, grow: int = 2) -> Image.Image:
    """A copy of `img` with a rectangle drawn `grow` pixels outside `box` = (x0, y0, x1, y1) (pixels)."""
    img = img.copy()
    x0, y0, x1, y1 = box
    ImageDraw.Draw(img).rectangle([x0 - grow, y0 - grow, x1 + grow // 2, y1 + grow // 2], outline=color, width=width)
    return img


# ---------------------------------------------------------------- filters and maps


def filter_picture(w: np.ndarray, width: int) -> Image.Image:
    """A (3, KH, KW) RGB filter as a colour picture `width` pixels wide: its own numbers stretched to 0..255."""
    rgb = np.moveaxis(w, 0, -1)  # (KH, KW, 3): row, col, colour
    lo, hi = float(rgb.min()), float(rgb.max())
    img = np.round((rgb - lo) / (hi - lo if hi > lo else 1) * 255).astype(np.uint8)
    return upscale(img, width)


def filters_and_maps(w: np.ndarray, maps: np.ndarray, cols: int = 4) -> Image.Image:
    """Each RGB filter w (F, 3, KH, KW) next to the map it made (maps (F, H, W), one colour scale), numbered from 1."""
    vmax = symmetric_limit(maps)
    tiles = [mosaic([filter_picture(w[f], 48).resize((48, 48)), upscale(diverging(maps[f], vmax), 96)], cols=2, pad=2)
             for f in range(len(maps))]
    return mosaic(tiles, cols=cols, labels=[f"filter {f + 1}" for f in range(len(maps))], pad=8)


def thumbnails(maps: np.ndarray, chosen: int, scale: int = 2) -> Image.Image:
    """Every map of a layer (C, H, W), small and each on its own colour scale, in two rows; `chosen` framed."""
    tiles = []
    for c, m in enumerate(maps):
        t = upscale(diverging(m), scale * m.shape[1])
        if c == chosen:
            t = outline(t, (0, 0) + m.shape, m.shape, color=(255, 170, 0), width=4)
        tiles.append(t)
    return mosaic(tiles, cols=-(-len(tiles) // 2), labels=[str(c + 1) for c in range(len(tiles))], pad=3)


def flattened_maps(x: np.ndarray, cell: int, label_font: int = 12) -> Image.Image:
    """Maps x (C, H, W) as C lines of H*W cells: line c is map c read row by row, labelled "map 1".. on the left.

    Read left to right, top to bottom, it is exactly `layers.flatten`'s C, H, W order.
    """
    C, H, W = x.shape
    cell = max(1, min(cell, 640 // (H * W)))  # bigger maps make longer lines: keep them on the screen
    rows = upscale(diverging(x.reshape(C, H * W)), H * W * cell)  # (C*cell, H*W*cell)
    f = font(label_font)
    label_w = int(f.getlength(f"map {C}")) + 10
    out = Image.new("RGB", (label_w + rows.width, rows.height), "white")
    out.paste(rows, (label_w, 0))
    d = ImageDraw.Draw(out)
    step = 1 if cell >= label_font else -(-label_font // cell)
    for c in range(0, C, step):
        d.text((label_w - 6, c * cell + cell / 2), f"map {c + 1}", fill=(60, 60, 60), font=f, anchor="rm")
    return out


def unrolled_map(m: np.ndarray, vmax: float, cell: int) -> Image.Image:
    """One map (H, W) and, to its right, the same numbers in one line: its rows end to end, labelled from "row 1"."""
    H, W = m.shape
    grid = upscale(diverging(m, vmax), W * cell)
    cw = max(1, min(cell // 2, 640 // (H * W)))  # narrower cells, so H*W of them fit on a screen
    line = Image.fromarray(diverging(m.reshape(1, H * W), vmax)).resize((H * W * cw, 2 * cell),
                                                                          Image.Resampling.NEAREST)
    f = font(max(10, cell * 2 // 3))
    strip = Image.new("RGB", (line.width + 1, line.height + f.size + 6), "white")
    strip.paste(line, (0, 0))
    d = ImageDraw.Draw(strip)
    for r in range(H):  # where each row of the map starts
        x = r * W * cw
        d.line([x, 0, x, line.height + 3], fill=(60, 60, 60), width=1)
        d.text((x + W * cw / 2, line.height + 3), f"row {r + 1}", fill=(60, 60, 60), font=f, anchor="ma")
    return equation([grid, strip], ["→"], gap=48)


# ---------------------------------------------------------------- the whole network in one picture

OVERVIEW_ROWS = 16  # thumbnails per sub-column of the overview


def overview(columns: list, classes, scale: int = 1) -> tuple[Image.Image, tuple]:
    """One picture of a whole network: a column per stage, left to right, labelled with its title and shape.

    columns: (title, what, array) with `what` one of OVERVIEW_BODIES: "picture" uint8 (h, w, 3) (drawn as
    its three colour planes, labelled 3xhxw), "maps" (C, H, W) (one colour scale per column), "scores"
    (K,) and "probabilities" (K,) (a row per class of `classes`), "list" (n,) (a block read row by row).
    Returns (image, boxes): boxes = ((title, map index, (x0, y0, x1, y1)), ...), one per map, in pixels.
    """
    s = scale
    gap, head_h = 16 * s, 32 * s
    name_font, shape_font = font(13 * s), font(11 * s)
    bodies = []  # (title, shape text, body image, [(map index, box in body)])
    for title, what, a in columns:
        shape = (3, *a.shape[:2]) if what == "picture" else a.shape
        body, boxes = OVERVIEW_BODIES[what](a, classes, s)
        bodies.append((title, "x".join(str(n) for n in shape), body, boxes if what == "maps" else []))
    body_h = max(b[2].height for b in bodies)
    widths = [max(b[2].width, int(name_font.getlength(b[0])), int(shape_font.getlength(b[1]))) for b in bodies]
    out = Image.new("RGB", (sum(widths) + gap * (len(bodies) - 1) + 8 * s, head_h + body_h + 8 * s), "white")
    d = ImageDraw.Draw(out)
    x, all_boxes = 4 * s, []
    for (title, shape, body, boxes), w in zip(bodies, widths):
        cx = x + w // 2
        d.text((cx, 2 * s), title, fill=(20, 20, 20), font=name_font, anchor="ma")
        d.text((cx, 17 * s), shape, fill=(110, 110, 110), font=shape_font, anchor="ma")
        bx, by = x + (w - body.width) // 2, head_h + (body_h - body.height) // 2
        out.paste(body, (bx, by))
        all_boxes += [(title, k, (bx + b[0], by + b[1], bx + b[2], by + b[3])) for k, b in boxes]
        if x + w + gap < out.width:  # an arrow to the next column
            ay, ax = head_h + body_h // 2, x + w + gap // 2
            d.polygon([(ax - 3 * s, ay - 5 * s), (ax + 4 * s, ay), (ax - 3 * s, ay + 5 * s)], fill=(175, 175, 175))
        x += w + gap
    return out, tuple(all_boxes)


def _thumb_column(thumbs: list, pad: int) -> tuple[Image.Image, list]:
    """Same-size thumbnails top to bottom, OVERVIEW_ROWS per sub-column -> (image, [(index, box)])."""
    w, h = thumbs[0].size
    cols, rows = -(-len(thumbs) // OVERVIEW_ROWS), min(len(thumbs), OVERVIEW_ROWS)
    img = Image.new("RGB", (cols * (w + pad) - pad, rows * (h + pad) - pad), "white")
    boxes = []
    for k, t in enumerate(thumbs):
        x, y = (k // OVERVIEW_ROWS) * (w + pad), (k % OVERVIEW_ROWS) * (h + pad)
        img.paste(t, (x, y))
        boxes.append((k, (x, y, x + w, y + h)))
    return img, boxes


def _picture_body(small: np.ndarray, classes, s: int):
    return _thumb_column([upscale(channel_plane(small, c), 32 * s) for c in range(3)], 3 * s)


def _maps_body(maps: np.ndarray, classes, s: int):
    vmax = symmetric_limit(maps)
    return _thumb_column([upscale(diverging(m, vmax), 32 * s) for m in maps], 3 * s)


def _list_body(v: np.ndarray, classes, s: int):
    """A long vector as a block of 16 cells a row, in its own order (left to right, top to bottom)."""
    cols, height = 16, OVERVIEW_ROWS * 35 * s  # as tall as a full column of thumbnails
    rows = -(-v.size // cols)
    grid = np.zeros(rows * cols, np.float32)
    grid[:v.size] = v.ravel()
    cell = max(1, min(3, height // rows))
    rgb = diverging(grid.reshape(rows, cols))  # (rows, 16, 3)
    return Image.fromarray(rgb).resize((cols * cell, rows * cell), Image.Resampling.NEAREST), []


def _scores_body(z: np.ndarray, classes, s: int):
    """Class names with a signed bar each (zero in the middle); the top class darker."""
    f, row, bar = font(10 * s), 20 * s, 50 * s
    label_w = int(max(f.getlength(c) for c in classes)) + 6 * s
    img = Image.new("RGB", (label_w + bar, len(z) * row), "white")
    d = ImageDraw.Draw(img)
    reach, top, zero = symmetric_limit(z), int(np.argmax(z)), label_w + bar // 2
    for k, (c, v) in enumerate(zip(classes, z)):
        y = k * row
        d.text((label_w - 4 * s, y + row // 2), c, fill=(20, 20, 20), font=f, anchor="rm")
        end = zero + v / reach * (bar // 2 - 1)
        color = ((178, 24, 43) if k == top else (244, 165, 130)) if v >= 0 else (146, 197, 222)
        d.rectangle([min(zero, end), y + 4 * s, max(zero, end), y + row - 4 * s], fill=color)
    d.line([zero, 0, zero, img.height], fill=(120, 120, 120), width=1)
    return img, []


def _probabilities_body(p: np.ndarray, classes, s: int):
    """Probabilities as bars from 0 to 100% with the percentage; rows line up with the scores column."""
    f, row, bar = font(10 * s), 20 * s, 44 * s
    img = Image.new("RGB", (bar + 32 * s, len(p) * row), "white")
    d = ImageDraw.Draw(img)
    top = int(np.argmax(p))
    for k, v in enumerate(p):
        y = k * row
        d.rectangle([0, y + 4 * s, bar, y + row - 4 * s], fill=(238, 238, 238))
        d.rectangle([0, y + 4 * s, max(1, v * bar), y + row - 4 * s],
                    fill=(214, 96, 77) if k == top else (146, 197, 222))
        d.text((bar + 4 * s, y + row // 2), f"{v:.0%}", fill=(20, 20, 20), font=f, anchor="lm")
    return img, []


OVERVIEW_BODIES = {"picture": _picture_body, "maps": _maps_body, "list": _list_body, "scores": _scores_body,
                   "probabilities": _probabilities_body}
