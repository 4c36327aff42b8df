"""Turning pictures into the arrays a model sees.

`load_image` is the one door for pictures from users: whatever comes in
(an upload, a path, raw bytes) either becomes a uint8 (H, W, 3) array, at most
MAX_SIDE px on its long side, or an `ImageError` whose message a student can
act on. `fit_to_input` then crops and resizes that array to the model's input size.

A file of a few kilobytes can claim forty million pixels, and one server holds a
whole class, so every picture is decoded within a budget (issue 15; measured per
file by tests/test_images_budget.py and benchmarks/decode_memory.py):
- before Pillow parses the file, the items its Python code walks one by one (PNG
  chunks, JPEG segments and scans, GIF blocks) are counted;
- from the header alone, before any pixel is decoded: the pixel count, the shape
  (long thin strips are refused) and the bytes the decoder will need (the picture
  in Pillow's storage for its mode, plus the format's own buffers) are checked;
- JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale (`Image.draft`);
- anything else is decoded once, then shrunk band by band (convert, composite on
  white and box-reduce a few rows at a time), so no full-size copy is ever made,
  and no int64 or float64 one at all.
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
MAX_SIDE = 1024  # the long side of a returned picture: plenty for a 32x32 model and for the pages
MAX_ASPECT = 20  # a picture longer than MAX_SIDE is refused if its long side is more than this times the short one
DECODE_BUDGET = 320 * 2**20  # bytes the decoder may need for one picture, estimated from its header
# Pillow decodes RLE bitmaps in Python: a run (2 bytes) at a time, and 4-bit ones a pixel at a time.
MAX_RLE_BYTES = 4 * 2**20  # about 0.2 us a run
MAX_RLE4_PIXELS = 10_000_000  # about 75 ns a pixel
MAX_JPEG_SCANS = 100  # a progressive JPEG has about 10; each scan is another pass over every block
MAX_FILE_ITEMS = 100_000  # PNG chunks, JPEG header segments and stray bytes, GIF blocks: Pillow walks them in Python
BAND_PIXELS = 1 << 20  # pixels converted at a time while shrinking
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # "JPEG" also opens phones' MPO

NOT_A_PICTURE = "This file is not a picture we can read. Try a JPG or PNG."
EMPTY = "This file is empty. Try choosing the picture again."
TOO_BIG_FILE = f"This file is too big (more than {MAX_BYTES // 2**20} MB). Try a smaller picture."
TOO_MANY_PIXELS = (
    f"This picture is too big (more than {MAX_PIXELS // 1_000_000} million pixels). "
    "Try a smaller picture."
)
TOO_LONG_AND_THIN = (
    f"This picture is too long and thin (one side is more than {MAX_ASPECT} times the other). "
    "Try a picture closer to a square, or cut out the part you want."
)
TOO_HEAVY = (
    "This picture would take too much memory or time to open, because of the way it is saved. "
    "Try a smaller picture, or save it as a JPG."
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
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}  # bytes a pixel; others 4
_TRANSPOSE = {  # EXIF orientation -> what puts the picture upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(ValueError):
    """A picture we cannot use; str(err) is a plain-words message for the student."""


def load_image(data) -> np.ndarray:
    """bytes, a path or a binary file object -> uint8 (H, W, 3), C-contiguous, max(H, W) <= MAX_SIDE.

    EXIF orientation is applied, transparency is composited on white, 16-bit
    greyscale is scaled by its full range, and animations give their first
    frame. Bigger pictures are shrunk (keeping the aspect) to MAX_SIDE px on the
    long side; JPEGs are decoded at reduced size to begin with.
    Raises ImageError, and nothing else, for anything that is not a sane picture
    or would cost more than the budget to decode.
    """
    raw = _read_bytes(data)
    try:
        with warnings.catch_warnings():
            # Pillow only warns about bombs between its two limits; refuse them too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            _check_items(raw)
            im = Image.open(io.BytesIO(raw), formats=FORMATS)
            size = im.size
            _check_shape(size)
            _draft_jpeg(im)
            _check_cost(im, size, raw)
            im.load()  # decode now, so a truncated file fails here
            return _small_rgb(im)
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


# ---------------------------------------------------------------- before decoding: the header's promises


def _check_items(raw: bytes) -> None:
    """Refuse a file whose structure makes Pillow's Python code loop too often, before Pillow reads it.

    Pillow parses PNG chunks, JPEG header segments (and stray bytes between them, one at a time) and
    GIF blocks in Python, at 0.2 to 3 us an item, and keeps each JPEG segment: 19 MB of empty JPEG
    markers cost 7 s of CPU and 700 MB. Counting them here stops after MAX_FILE_ITEMS.
    """
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        items = _png_items(raw)
    elif raw.startswith(b"\xff\xd8\xff"):
        items = _jpeg_items(raw)
        if raw.count(b"\xff\xda") > MAX_JPEG_SCANS:  # start-of-scan markers, which never occur inside a scan
            raise ImageError(TOO_HEAVY)
    elif raw[:6] in (b"GIF87a", b"GIF89a"):
        items = _gif_items(raw)
    else:
        return
    if items > MAX_FILE_ITEMS:
        raise ImageError(TOO_HEAVY)


def _png_items(raw: bytes) -> int:
    """PNG chunks, counted up to MAX_FILE_ITEMS + 1."""
    i, n = 8, 0
    while i + 8 <= len(raw) and n <= MAX_FILE_ITEMS:
        length, kind = struct.unpack_from(">I4s", raw, i)
        i, n = i + 12 + length, n + 1
        if kind == b"IEND":
            break
    return n


def _jpeg_items(raw: bytes) -> int:
    """What Pillow steps through before the first scan (segments, fill and stray bytes), up to MAX_FILE_ITEMS + 1."""
    i, n, end = 2, 0, len(raw)
    while i + 1 < end and n <= MAX_FILE_ITEMS:
        if raw[i] != 0xFF:  # stray bytes: Pillow skips them one by one
            j = raw.find(b"\xff", i)
            j = end if j < 0 else j
            i, n = j, n + j - i
            continue
        marker = raw[i + 1]
        if marker == 0xDA:  # start of scan: from here libjpeg (C) reads the file
            break
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD8:  # no length: fill, stuffing, restart, SOI
            i, n = i + (1 if marker == 0xFF else 2), n + 1
            continue
        i, n = i + 2 + int.from_bytes(raw[i + 2:i + 4], "big"), n + 1
    return n


def _gif_items(raw: bytes) -> int:
    """GIF extension sub-blocks and stray bytes before the first picture, up to MAX_FILE_ITEMS + 1."""
    flags = raw[10] if len(raw) > 10 else 0
    i, n, end = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), 0, len(raw)
    while i < end and n <= MAX_FILE_ITEMS:
        if raw[i] == 0x21:  # an extension: its label, then sub-blocks until an empty one
            i += 2
            while i < end and n <= MAX_FILE_ITEMS:
                size = raw[i]
                i, n = i + 1 + size, n + 1
                if size == 0:
                    break
        elif raw[i] in (0x2C, 0x3B):  # the first picture (read by the C decoder) or the end
            break
        else:  # a stray byte: Pillow skips it and reads the next
            i, n = i + 1, n + 1
    return n


def _check_shape(size) -> None:
    """Refuse from the header alone: no pixels, too many, or a long thin strip that would need shrinking.

    Strips up to MAX_SIDE long cost nothing and are kept; longer ones would shrink to a line a pixel
    wide, and cost Pillow a row pointer per row (a 1 x 39,000,000 PNG needs 450 MB before any pixel).
    """
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(NO_PIXELS)
    if w * h > MAX_PIXELS:
        raise ImageError(TOO_MANY_PIXELS)
    if max(w, h) > MAX_SIDE and max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageError(TOO_LONG_AND_THIN)


def _draft_jpeg(im: Image.Image) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale, still at least MAX_SIDE px on the long side."""
    w, h = im.size
    if im.format in ("JPEG", "MPO") and max(w, h) > MAX_SIDE:
        k = MAX_SIDE / max(w, h)  # draft picks the smallest scale that is still at least this size
        im.draft("RGB", (math.ceil(w * k), math.ceil(h * k)))


def _check_cost(im: Image.Image, size, raw: bytes) -> None:
    """Refuse a picture whose decoding would need more than DECODE_BUDGET bytes, or too much CPU."""
    w, h = size
    tile = im.tile[0] if im.tile else None
    if im.format == "BMP" and tile is not None and tile.codec_name == "bmp_rle":
        if len(raw) > MAX_RLE_BYTES or (tile.args[1] and w * h > MAX_RLE4_PIXELS):
            raise ImageError(TOO_HEAVY)
    if _decode_bytes(im, size) > DECODE_BUDGET:
        raise ImageError(TOO_HEAVY)


def _decode_bytes(im: Image.Image, size) -> int:
    """What decoding `im` (header size `size`, im.size after any draft) allocates: the picture in Pillow's
    storage for its mode (1, 2 or 4 bytes a pixel, plus a pointer a row) and the decoder's own buffers."""
    w, h = im.size
    picture = w * h * _STORED.get(im.mode, 4) + 8 * h
    if im.format == "WEBP":  # libwebp's canvas and frame, then the bytes handed to Pillow: 16 B/px in all
        return picture + 12 * w * h
    if im.format == "TIFF":
        return picture + _tiff_buffer(im)
    if im.format in ("JPEG", "MPO") and im.info.get("progressive"):
        return picture + _jpeg_coefficients(im, size)
    if im.format == "BMP" and im.tile and im.tile[0].codec_name == "bmp_rle":
        return picture + 3 * w * h  # Pillow's Python decoder grows a bytearray, then copies it
    return picture


def _tiff_buffer(im: Image.Image) -> int:
    """libtiff decodes a strip or a tile at a time into a buffer of its size (4 B/px at least, for RGBA reads)."""
    tags = im.tag_v2
    w, h = im.size
    bits = tags.get(258, 1)
    bits = max(bits) if isinstance(bits, tuple) else bits
    px = max(4, math.ceil(int(tags.get(277, 1)) * int(bits) / 8))
    if 322 in tags or 323 in tags:  # tiled: a tile's declared size, however big the picture
        return int(tags.get(322, w)) * int(tags.get(323, h)) * px
    return w * min(h, int(tags.get(278, h))) * px


def _jpeg_coefficients(im: Image.Image, size) -> int:
    """A progressive JPEG keeps every DCT coefficient of the full-size picture (2 bytes each) until its last scan."""
    w, h = size
    hmax = max(c[1] for c in im.layer)
    vmax = max(c[2] for c in im.layer)
    return sum(math.ceil(w * c[1] / hmax / 8) * math.ceil(h * c[2] / vmax / 8) * 128 for c in im.layer)


# ---------------------------------------------------------------- after decoding: small, upright, RGB


def _small_rgb(im: Image.Image) -> np.ndarray:
    """A decoded picture of any mode -> uint8 (H, W, 3), upright, long side at most MAX_SIDE."""
    small = _shrink(im, _grey_gain(im))
    method = _orientation(im)
    if method is not None:
        small = small.transpose(method)
    return np.ascontiguousarray(np.array(small, dtype=np.uint8))


def _shrink(im: Image.Image, gain: float | None) -> Image.Image:
    """Any mode -> RGB at most MAX_SIDE px on the long side, a band of rows at a time.

    Each band is converted, then box-reduced by a whole factor k (`reduce`) that still leaves twice
    MAX_SIDE on the long side; the exact resize to MAX_SIDE then runs on that small picture. Compositing
    on white before averaging equals averaging with premultiplied alpha, so bands need no alpha maths.
    """
    w, h = im.size
    k = max(1, max(w, h) // (2 * MAX_SIDE))
    rows = max(k, BAND_PIXELS // w // k * k)  # a multiple of k, so the bands' blocks are the whole's
    out = Image.new("RGB", (-(-w // k), -(-h // k)))
    for top in range(0, h, rows):
        band = _rgb(im.crop((0, top, w, min(h, top + rows))), gain)
        out.paste(band.reduce(k) if k > 1 else band, (0, top // k))
    s = min(1.0, MAX_SIDE / max(w, h))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return out if out.size == size else out.resize(size, Image.Resampling.BOX)


def _rgb(im: Image.Image, gain: float | None) -> Image.Image:
    """A (small) picture of any mode -> RGB; wide greys through `_grey_to_uint8`, alpha on white."""
    if im.mode in _WIDE_GREY or im.mode == "F":
        return Image.fromarray(_grey_to_uint8(np.array(im), gain)).convert("RGB")
    if im.has_transparency_data:  # alpha band, palette alpha or a transparent colour
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")
    return im.convert("RGB")


def _grey_gain(im: Image.Image) -> float | None:
    """For float greyscale, 255 if every value (NaN read as 0) lies in 0..1, else 1; None for other modes."""
    if im.mode != "F":
        return None
    w, h = im.size
    rows = max(1, BAND_PIXELS // w)
    for top in range(0, h, rows):
        a = np.nan_to_num(np.array(im.crop((0, top, w, min(h, top + rows)))), copy=False,
                          nan=0.0, posinf=255.0, neginf=0.0)
        if a.min() < 0 or a.max() > 1:
            return 1.0
    return 255.0


def _grey_to_uint8(a: np.ndarray, gain: float | None) -> np.ndarray:
    """(H, W) 16/32-bit integer or float32 greyscale -> uint8 (H, W), in place where it can.

    Integers are taken as 16-bit (0..65535 -> 0..255, i.e. v >> 8): a plain
    convert("L") would clip everything above 255 to white. Floats follow
    Pillow's 0..255 convention, times `gain` (255 for pictures whose values
    all lie in 0..1, see `_grey_gain`).
    """
    if a.dtype.kind in "iu":
        if a.dtype.itemsize > 2 or a.dtype.kind == "i":
            a = np.clip(a, 0, 65535, out=a)
        return (a >> 8).astype(np.uint8)
    a = np.nan_to_num(a, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    if gain is not None and gain != 1:
        a *= gain
    np.round(a, out=a)
    return np.clip(a, 0, 255, out=a).astype(np.uint8)


def _orientation(im: Image.Image):
    """The transpose that puts the picture upright, from its EXIF orientation; None if none is needed."""
    try:
        return _TRANSPOSE.get(im.getexif().get(0x0112))
    except _DECODE_ERRORS:  # broken EXIF on good pixels: keep the picture as stored
        return None


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
