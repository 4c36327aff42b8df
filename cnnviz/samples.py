"""The sample pictures: teaching patterns drawn here, plus a few free photos shipped in assets/samples.

    python -m cnnviz.samples    # (re)draws the generated patterns into assets/samples/
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
SIZE = 128


def _canvas(color=(255, 255, 255)):
    img = Image.new("RGB", (SIZE, SIZE), color)
    return img, ImageDraw.Draw(img)


def vertical_bar():
    img, d = _canvas((20, 20, 20))
    d.rectangle([SIZE * 0.4, 0, SIZE * 0.6, SIZE], fill=(240, 240, 240))
    return img


def horizontal_bar():
    img, d = _canvas((20, 20, 20))
    d.rectangle([0, SIZE * 0.4, SIZE, SIZE * 0.6], fill=(240, 240, 240))
    return img


def diagonal_edge():
    y, x = np.mgrid[:SIZE, :SIZE]
    a = np.where(x > y, 235, 25).astype(np.uint8)
    return Image.fromarray(np.stack([a, a, a], -1))


def checkerboard():
    y, x = np.mgrid[:SIZE, :SIZE] // (SIZE // 8)
    a = np.where((x + y) % 2 == 0, 240, 20).astype(np.uint8)
    return Image.fromarray(np.stack([a, a, a], -1))


def smiley():
    img, d = _canvas((135, 206, 235))
    d.ellipse([12, 12, SIZE - 12, SIZE - 12], fill=(255, 215, 0), outline=(60, 40, 0), width=3)
    d.ellipse([40, 40, 52, 56], fill=(40, 30, 0))
    d.ellipse([76, 40, 88, 56], fill=(40, 30, 0))
    d.arc([36, 50, 92, 100], start=20, end=160, fill=(40, 30, 0), width=5)
    return img


def colour_stripes():
    img, d = _canvas()
    for k, c in enumerate([(220, 30, 30), (30, 170, 30), (30, 60, 220), (250, 220, 30)]):
        d.rectangle([k * SIZE / 4, 0, (k + 1) * SIZE / 4, SIZE], fill=c)
    return img


GENERATED = {
    "vertical-bar": vertical_bar,
    "horizontal-bar": horizontal_bar,
    "diagonal-edge": diagonal_edge,
    "checkerboard": checkerboard,
    "smiley": smiley,
    "colour-stripes": colour_stripes,
}


def sample_names() -> list[str]:
    """Names of every sample picture in assets/samples (file stem), in a stable order."""
    files = [p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg")]
    photos = sorted(p.stem for p in files if p.stem not in GENERATED)
    return photos + [n for n in GENERATED if (SAMPLES_DIR / f"{n}.png").exists()]


def sample_path(name: str) -> Path | None:
    """The file of a sample by name, or None if there is no such sample (names come from URLs)."""
    if name not in sample_names():
        return None
    for suffix in (".png", ".jpg"):
        p = SAMPLES_DIR / f"{name}{suffix}"
        if p.exists():
            return p
    return None


def main() -> None:
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for name, draw in GENERATED.items():
        draw().save(SAMPLES_DIR / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
