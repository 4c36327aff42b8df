"""Colour blindness: the maps' red-white-blue scale and the right/wrong frames of "Teach your own classes",
seen through the standard simulation of protanopia, deuteranopia and tritanopia (Machado, Oliveira and
Fernandes 2009, severity 1.0, applied in linear RGB). The two sides of the scale stay apart and its
lightness still grows with the size of a number; right and wrong stay apart. The simulated pictures are
saved in artifacts/colour-vision/ to look at."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz import render
from cnnviz.images import load_image
from cnnviz.model import load_model, trace
from cnnviz.samples import sample_path
from cnnviz.ui.state import DEFAULT_SAMPLE

OUT = Path(__file__).resolve().parents[1] / "artifacts" / "colour-vision"

# Machado et al. 2009, "A Physiologically-based Model for Simulation of Color Vision Deficiency", severity 1.0.
MACHADO = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
D65 = np.array([0.95047, 1.0, 1.08883])


def linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055) * 255


def simulate(rgb, kind: str) -> np.ndarray:
    """uint8-valued RGB (..., 3) -> how it looks with `kind` colour blindness, float RGB 0..255 (..., 3)."""
    return to_srgb(linear(rgb) @ np.array(MACHADO[kind]).T)


def lab(rgb) -> np.ndarray:
    """RGB 0..255 (..., 3) -> CIELAB (..., 3) under D65."""
    xyz = linear(rgb) @ SRGB_TO_XYZ.T / D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a, b) -> np.ndarray:
    """CIE76 colour difference; about 2 is just noticeable, above 20 is a different colour."""
    return np.linalg.norm(lab(a) - lab(b), axis=-1)


KINDS = list(MACHADO)


@pytest.mark.parametrize("kind", KINDS)
def test_the_two_sides_of_the_map_scale_stay_apart(kind):
    lut = simulate(render.DIVERGING_LUT, kind)  # (256, 3): -vmax .. +vmax
    neg, pos = lut[127::-1], lut[128:]  # from 0 outwards, each side
    far = np.arange(128) >= 32  # a quarter of the way to either end, and beyond
    assert delta_e(neg, pos)[far].min() > 20


@pytest.mark.parametrize("kind", KINDS)
def test_the_size_of_a_number_still_reads_as_darkness_on_both_sides(kind):
    light = lab(simulate(render.DIVERGING_LUT, kind))[:, 0]  # L*, from -vmax to +vmax
    assert np.all(np.diff(light[:128]) >= -0.5)  # lighter towards 0 ...
    assert np.all(np.diff(light[128:]) <= 0.5)  # ... and darker away from it
    assert light[127] - max(light[0], light[255]) > 60  # white in the middle, dark at both ends


@pytest.mark.parametrize("kind", KINDS)
def test_right_and_wrong_stay_apart_where_green_and_red_did_not(kind):
    assert delta_e(simulate(render.RIGHT, kind), simulate(render.WRONG, kind)) > 40
    if kind == "deuteranopia":  # what the issue saw: the old green and red frames both come out olive
        old_green, old_red = (40, 160, 60), (214, 40, 40)
        assert delta_e(simulate(old_green, kind), simulate(old_red, kind)) < 20


def _contrast(a, b) -> float:
    la, lb = (float(linear(c) @ SRGB_TO_XYZ[1]) for c in (a, b))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


@pytest.mark.parametrize("color", [render.RIGHT, render.WRONG])
def test_the_words_right_and_wrong_are_readable_on_their_colour(color):
    assert _contrast((255, 255, 255), color) >= 4.5


def test_the_simulated_pictures_are_saved_to_look_at():
    """The scale, a real feature map and the right/wrong tiles as each kind of colour blindness sees them."""
    stages = trace(load_model(), load_image(sample_path(DEFAULT_SAMPLE)))
    fmap = stages[1].output[4]  # conv1_1, map 5
    small = stages[0].output  # only for its size
    tiles = [render.verdict_tile(np.full((*small.shape[1:], 3), 200, np.uint8), ok) for ok in (True, False)]
    parts = [render.upscale(render.diverging(fmap), 192), render.legend(render.symmetric_limit(fmap), width=192),
             render.mosaic(tiles, cols=2, pad=6, labels=["right", "wrong"])]
    row = render.equation(parts, [" ", " "], gap=24)  # side by side on one white picture
    rgb = np.asarray(row)
    OUT.mkdir(parents=True, exist_ok=True)
    seen = [row] + [Image.fromarray(np.round(simulate(rgb, k)).astype(np.uint8)) for k in KINDS]
    render.mosaic(seen, cols=1, labels=["normal vision", *KINDS], pad=6).save(OUT / "scale-map-verdicts.png")
    assert (OUT / "scale-map-verdicts.png").stat().st_size > 0
