"""Turning pictures into the arrays a model sees.

`load_image` is the one door for pictures from users: whatever comes in
(an upload, a path, raw bytes) either becomes a uint8 (H, W, 3) array or an
`ImageError` whose message a student can act on. `fit_to_input` then crops
and resizes that array to the model's input size.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 20 * 1024 * 1024  # bigger files are refused before decoding
MAX_PIXELS = 40_000_000  # width * height from the header; refused before decoding
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # "JPEG" also opens phones' MPO
DRAFT_ABOVE = 2048  # JPEGs longer than this on a side are decoded at reduced size
DRAFT_SHORT_SIDE = 1024  # ... but never below this on the short side

NOT_A_PICTURE = "This file is not a picture we can read. Try a JPG or PNG."
EMPTY = "This file is empty. Try choosing the picture again."
TOO_BIG_FILE = f"This file is too big (more than {MAX_BYTES // 2**20} MB). Try a smaller picture."
TOO_MANY_PIXELS = (
    f"This picture is too big (more than {MAX_PIXELS // 1_000_000} million pixels). "
    "Try a smaller picture."
)
NO_PIXELS = "This picture has no pixels in it. Try a different picture."
BROKEN = (
    "This picture seems broken or only partly saved, so we cannot read it. "
    "Try saving it again as a JPG or PNG."
)
CANNOT_OPEN = "We could not open this file. Check that it is there and try again."

# What Pillow's decoders raise on malformed input (the list is long because
# each format plugin fails in its own way).
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError, IndexError,
    TypeError, KeyError, AttributeError, ZeroDivisionError, RuntimeError, OverflowError,
)
_WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16/32-bit integer greyscale


class ImageError(ValueError):
    """A picture we cannot use; str(err) is a plain-words message for the student."""


def load_image(data) -> np.ndarray:
    """bytes, a path or a binary file object -> uint8 (H, W, 3), C-contiguous.

    EXIF orientation is applied, transparency is composited on white, 16-bit
    greyscale is scaled by its full range, and animations give their first
    frame. Large JPEGs (over DRAFT_ABOVE px on a side) are decoded at reduced
    size, keeping the aspect and at least DRAFT_SHORT_SIDE px on the short side.
    Raises ImageError, and nothing else, for anything that is not a sane picture.
    """
    raw = _read_bytes(data)
    try:
        with warnings.catch_warnings():
            # Pillow only warns about bombs between its two limits; refuse them too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=FORMATS)
            _check_size(im.size)
            _reduce_large_jpeg(im)
            im.load()  # decode now, so a truncated file fails here
            return _to_rgb(_upright(im))
    except ImageError:
        raise
    except UnidentifiedImageError as err:
        raise ImageError(NOT_A_PICTURE) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(TOO_MANY_PIXELS) from err
    except _DECODE_ERRORS as err:
        raise ImageError(BROKEN) from err


def _read_bytes(data) -> bytes:
    """The file's bytes, refusing empty and over-MAX_BYTES files without reading them whole."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if memoryview(data).nbytes > MAX_BYTES:
            raise ImageError(TOO_BIG_FILE)
        raw = bytes(data)
    elif isinstance(data, (str, os.PathLike)):
        try:
            with open(data, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except (OSError, ValueError) as err:  # ValueError: e.g. a NUL in the path
            raise ImageError(CANNOT_OPEN) from err
    elif hasattr(data, "read"):
        raw = _read_file_object(data)
    else:
        raise ImageError(NOT_A_PICTURE)
    if not raw:
        raise ImageError(EMPTY)
    if len(raw) > MAX_BYTES:
        raise ImageError(TOO_BIG_FILE)
    return raw


def _read_file_object(f) -> bytes:
    """Up to MAX_BYTES + 1 bytes from the start of `f` (Streamlit's UploadedFile has .size)."""
    size = getattr(f, "size", None)
    if isinstance(size, int) and size > MAX_BYTES:
        raise ImageError(TOO_BIG_FILE)
    try:
        if f.seekable():  # an upload already shown by st.image sits at its end
            f.seek(0)
        raw = f.read(MAX_BYTES + 1)
    except (OSError, ValueError, AttributeError) as err:  # ValueError: a closed file
        raise ImageError(CANNOT_OPEN) from err
    if not isinstance(raw, (bytes, bytearray)):  # a file opened in text mode
        raise ImageError(NOT_A_PICTURE)
    return bytes(raw)


def _check_size(size) -> None:
    """Refuse from the header alone, before any pixel is decoded."""
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(NO_PIXELS)
    if w * h > MAX_PIXELS:
        raise ImageError(TOO_MANY_PIXELS)


def _reduce_large_jpeg(im: Image.Image) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far faster, and plenty for a 32x32 model."""
    w, h = im.size
    if im.format not in ("JPEG", "MPO") or max(w, h) <= DRAFT_ABOVE:
        return
    k = DRAFT_SHORT_SIDE / min(w, h)
    if k < 1:  # draft picks the smallest scale that is still at least this size
        im.draft("RGB", (math.ceil(w * k), math.ceil(h * k)))


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as phones store photos sideways and say so in EXIF."""
    try:
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS:  # broken EXIF on good pixels: keep the picture as stored
        return im


def _to_rgb(im: Image.Image) -> np.ndarray:
    """A loaded PIL image of any mode -> uint8 (H, W, 3), C-contiguous."""
    if im.mode in _WIDE_GREY or im.mode == "F":
        g = _grey_to_uint8(np.asarray(im))  # (H, W)
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))  # (H, W, 3)
    if im.has_transparency_data:  # alpha band, palette alpha or a transparent colour
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    return np.ascontiguousarray(np.array(im.convert("RGB"), dtype=np.uint8))


def _grey_to_uint8(a: np.ndarray) -> np.ndarray:
    """(H, W) 16/32-bit integer or float greyscale -> uint8 (H, W).

    Integers are taken as 16-bit (0..65535 -> 0..255, i.e. v >> 8): a plain
    convert("L") would clip everything above 255 to white. Floats follow
    Pillow's 0..255 convention, except that pictures whose values all lie
    in 0..1 are scaled up by 255.
    """
    if a.dtype.kind in "iu":
        return (np.clip(a.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if a.size and a.min() >= 0 and a.max() <= 1:
        a = a * 255
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def fit_to_input(image: np.ndarray, size) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3): centre-crop to the aspect of `size`, then resize (PIL's ImageOps.fit).

    Shrinking uses PIL's area-averaging (BOX) filter, which keeps small details
    fair; enlarging uses bicubic. ImageOps.fit resizes the centred region of the
    whole picture rather than a cut-out: the crop may start half-way into a pixel
    (odd margins), and a filter may read a pixel just past its edge.
    """
    h, w = size
    H, W = image.shape[:2]
    if (H, W) == (h, w):
        return image
    resample = Image.Resampling.BOX if H >= h and W >= w else Image.Resampling.BICUBIC
    return np.asarray(ImageOps.fit(Image.fromarray(np.ascontiguousarray(image)), (w, h), resample))
