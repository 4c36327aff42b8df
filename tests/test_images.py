"""load_image: every picture a student might upload, good or bad. All files are made here."""

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from cnnviz import images
from cnnviz.images import MAX_BYTES, MAX_PIXELS, ImageError, fit_to_input, load_image


def picture(w=24, h=16):
    """A colourful uint8 (h, w, 3) test picture with no two neighbours alike."""
    y, x = np.mgrid[0:h, 0:w]
    r, g, b = x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * 7 + y * 13) % 256
    return np.stack([r, g, b], -1).astype(np.uint8)


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header(w, h, bit_depth=8, colour_type=2, idat=b""):
    """A PNG that is only its header (plus optional IDAT), claiming w x h pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + (chunk(b"IDAT", idat) if idat else b"")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


class FakeUpload(io.BytesIO):
    """Like Streamlit's UploadedFile: a BytesIO with .name and .size."""

    def __init__(self, data, name="picture.png", size=None):
        super().__init__(data)
        self.name = name
        self.size = len(data) if size is None else size


def assert_rgb(a, shape=None):
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8
    assert a.ndim == 3 and a.shape[2] == 3 and a.flags.c_contiguous
    if shape is not None:
        assert a.shape == shape


# --- where the bytes come from ---------------------------------------------

def test_bytes_path_str_and_file_objects_agree(tmp_path):
    x = picture()
    data = encode(Image.fromarray(x), "PNG")
    p = tmp_path / "cat.png"
    p.write_bytes(data)
    with open(p, "rb") as f:
        from_file = load_image(f)
    for a in (load_image(data), load_image(bytearray(data)), load_image(p), load_image(str(p)),
              load_image(io.BytesIO(data)), load_image(FakeUpload(data)), from_file):
        assert_rgb(a, x.shape)
        np.testing.assert_array_equal(a, x)


def test_upload_already_read_to_its_end_is_read_from_the_start():
    up = FakeUpload(encode(Image.fromarray(picture()), "PNG"))
    up.read()
    np.testing.assert_array_equal(load_image(up), picture())


@pytest.mark.parametrize("bad", [None, 42, 3.5, ["not", "bytes"]])
def test_things_that_are_not_files(bad):
    with pytest.raises(ImageError):
        load_image(bad)


def test_missing_path_and_text_mode_file(tmp_path):
    with pytest.raises(ImageError, match="could not open"):
        load_image(tmp_path / "nope.png")
    p = tmp_path / "a.png"
    p.write_bytes(encode(Image.fromarray(picture()), "PNG"))
    with open(p, encoding="latin-1") as f, pytest.raises(ImageError):
        load_image(f)


# --- not pictures -----------------------------------------------------------

NOT_PICTURES = [
    b"Hello, this is my homework.\n",
    bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    b"#!/bin/sh\nrm -rf /\n",
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS would need Ghostscript: not allowed
]


@pytest.mark.parametrize("data", NOT_PICTURES, ids=range(len(NOT_PICTURES)))
@pytest.mark.parametrize("name", ["cat.png", "dog.jpg", "bird.gif"])
def test_not_a_picture_even_with_a_picture_name(tmp_path, data, name):
    p = tmp_path / name
    p.write_bytes(data)
    for source in (data, p, FakeUpload(data, name=name)):
        with pytest.raises(ImageError, match="not a picture"):
            load_image(source)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    for source in (b"", p, FakeUpload(b"")):
        with pytest.raises(ImageError, match="empty"):
            load_image(source)


def test_messages_are_plain_words():
    with pytest.raises(ImageError) as info:
        load_image(b"plain text")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert msg[0].isupper() and msg.endswith(".") and "Try" in msg
    assert "PIL" not in msg and "Error" not in msg


# --- broken and dangerous files ---------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    data = encode(Image.fromarray(picture(64, 64)), fmt)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageError, match="broken"):
        load_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # not switched on behind our back


def test_file_over_max_bytes_is_refused_before_reading():
    with pytest.raises(ImageError, match="too big"):
        load_image(b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES))
    # An upload that says it is huge is refused on its .size alone.
    up = FakeUpload(encode(Image.fromarray(picture()), "PNG"), size=MAX_BYTES + 1)
    with pytest.raises(ImageError, match="too big"):
        load_image(up)
    assert up.tell() == 0


@pytest.mark.parametrize("w, h", [(20_000, 20_000), (7_000, 7_000), (65_535, 65_535), (MAX_PIXELS + 1, 1)])
def test_decompression_bomb_is_refused_from_the_header(w, h):
    # The file holds no pixel data at all: "too big" (not "broken") proves we stopped at the header.
    # 7000x7000 is under Pillow's own limit, so this is our MAX_PIXELS check.
    with pytest.raises(ImageError, match="too big"):
        load_image(png_header(w, h))


def test_real_compressed_bomb_is_refused():
    # A genuine 7000x7000 black PNG (49 Mpx, under Pillow's own limit): zeros deflate to about 50 kB.
    z = zlib.compressobj(9)
    row = b"\x00" + bytes(7_000)
    idat = b"".join(z.compress(row) for _ in range(7_000)) + z.flush()
    with pytest.raises(ImageError, match="too big"):
        load_image(png_header(7_000, 7_000, colour_type=0, idat=idat))


def test_pillow_bomb_warning_becomes_an_error_without_changing_global_state(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    filters_before = list(warnings.filters)
    with pytest.raises(ImageError, match="too big"):
        load_image(encode(Image.fromarray(picture(40, 40)), "PNG"))  # 1600 px: Pillow only warns
    assert list(warnings.filters) == filters_before


@pytest.mark.parametrize("w, h", [(0, 10), (10, 0), (0, 0)])
def test_zero_size(w, h):
    with pytest.raises(ImageError):
        load_image(png_header(w, h))


# --- colour modes -----------------------------------------------------------

def test_16_bit_grey_uses_its_full_range():
    ramp = np.arange(0, 65536, 64, dtype=np.uint16).reshape(1, -1)  # (1, 1024)
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    a = load_image(data)
    assert_rgb(a, (1, 1024, 3))
    g = a[0, :, 0].astype(int)
    np.testing.assert_array_equal(a[..., 0], a[..., 2])
    assert g[0] == 0 and g[-1] == 255 and np.all(np.diff(g) >= 0)
    assert abs(g[512] - 128) <= 1
    np.testing.assert_array_equal(g, ramp[0] >> 8)


def test_32_bit_int_tiff_is_read_as_16_bit():
    v = np.array([[0, 256, 32768, 65535, 70_000]], np.int32)
    a = load_image(encode(Image.fromarray(v, "I"), "TIFF"))
    np.testing.assert_array_equal(a[0, :, 0], [0, 1, 128, 255, 255])


def test_float_grey():
    v = np.array([[0.0, 100.0, 255.0, 300.0, -5.0]], np.float32)
    a = load_image(encode(Image.fromarray(v, "F"), "TIFF"))
    np.testing.assert_array_equal(a[0, :, 1], [0, 100, 255, 255, 0])
    unit = np.array([[0.0, 0.5, 1.0]], np.float32)  # a 0..1 picture is scaled up
    a = load_image(encode(Image.fromarray(unit, "F"), "TIFF"))
    np.testing.assert_array_equal(a[0, :, 0], [0, 128, 255])


def test_one_bit():
    bits = Image.fromarray(np.array([[0, 255, 0], [255, 0, 255]], np.uint8)).convert("1")
    data = encode(bits, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "1"
    a = load_image(data)
    np.testing.assert_array_equal(a[..., 0], [[0, 255, 0], [255, 0, 255]])


def test_alpha_is_composited_on_white():
    px = np.array([[[255, 0, 0, 0], [0, 0, 0, 128], [10, 20, 30, 255]]], np.uint8)  # (1, 3, 4)
    a = load_image(encode(Image.fromarray(px, "RGBA"), "PNG"))
    assert tuple(a[0, 0]) == (255, 255, 255)  # fully transparent red -> white
    assert np.all(np.abs(a[0, 1].astype(int) - 128) <= 1)  # half-transparent black -> grey
    assert tuple(a[0, 2]) == (10, 20, 30)


def test_grey_with_alpha():
    la = np.array([[[0, 0], [0, 128], [200, 255]]], np.uint8)
    a = load_image(encode(Image.fromarray(la, "LA"), "PNG"))
    np.testing.assert_allclose(a[0, :, 0], [255, 128, 200], atol=1)


def test_palette_with_and_without_transparency():
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    want = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 255, 0]]], np.uint8)
    np.testing.assert_array_equal(load_image(encode(im, "PNG")), want)
    want[0, 0] = 255  # index 0 (red) is now transparent -> white
    np.testing.assert_array_equal(load_image(encode(im, "PNG", transparency=0)), want)
    np.testing.assert_array_equal(load_image(encode(im, "GIF", transparency=0)), want)


def test_cmyk_jpeg():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    a = load_image(data)
    np.testing.assert_allclose(a.reshape(-1, 3).mean(0), [255, 0, 0], atol=4)


def test_ycbcr_tiff():
    ycc = Image.fromarray(picture(), "RGB").convert("YCbCr")
    data = encode(ycc, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "YCbCr"
    np.testing.assert_array_equal(load_image(data), np.asarray(ycc.convert("RGB")))


# --- orientation, animation, formats ------------------------------------------

def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(Image.new("RGB", (20, 10), (0, 128, 255)), "JPEG", exif=exif)
    assert_rgb(load_image(data), (20, 10, 3))  # stored 20 wide, shown 10 wide


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    a = load_image(data)
    assert np.all(a == [255, 0, 0])


@pytest.mark.parametrize("fmt, kw", [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_lossless_formats_round_trip(fmt, kw):
    x = picture()
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(x), fmt, **kw)), x)


def test_gif_round_trip():
    x = np.zeros((12, 18, 3), np.uint8)
    x[:6] = (255, 0, 0)
    x[:, 9:] = (0, 200, 100)  # few colours, so the palette holds them exactly
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(x), "GIF")), x)


@pytest.mark.parametrize("fmt, kw", [("JPEG", {"quality": 95}), ("WEBP", {"quality": 95})])
def test_lossy_formats_stay_close(fmt, kw):
    x = picture(64, 48)
    a = load_image(encode(Image.fromarray(x), fmt, **kw))
    assert_rgb(a, x.shape)
    assert np.abs(a.astype(int) - x).mean() < 8


# --- sizes ------------------------------------------------------------------

@pytest.mark.parametrize("w, h", [(1, 1), (1, 1024), (1024, 1)])
def test_tiny_and_strip_pictures(w, h):
    a = load_image(encode(Image.new("RGB", (w, h), (30, 60, 90)), "PNG"))
    assert_rgb(a, (h, w, 3))
    b = fit_to_input(a, (32, 32))
    assert_rgb(b, (32, 32, 3))
    assert np.all(b == (30, 60, 90))


@pytest.mark.parametrize("w, h", [(1, 5000), (5000, 1), (2100, 100)])
def test_long_and_thin_pictures_are_refused(w, h):
    with pytest.raises(images.ImageError) as e:
        load_image(encode(Image.new("RGB", (w, h), (30, 60, 90)), "PNG"))
    assert str(e.value) == images.TOO_LONG_AND_THIN


def test_photo_sized_jpeg_is_decoded_at_reduced_size():
    data = encode(Image.new("RGB", (6000, 4000), (200, 100, 50)), "JPEG")
    a = load_image(data)
    assert_rgb(a)
    h, w = a.shape[:2]
    assert max(h, w) == images.MAX_SIDE and abs(w * 2 - h * 3) <= 3  # no longer than needed, same 3:2 aspect
    np.testing.assert_allclose(a[h // 2, w // 2], (200, 100, 50), atol=3)


def _grey16():
    return Image.fromarray(np.arange(0, 65536, 170, dtype=np.uint16)[:24 * 16].reshape(16, 24))


@pytest.mark.parametrize("make", [lambda: Image.fromarray(picture()), _grey16,
                                  lambda: Image.fromarray(picture()).convert("RGBA")], ids=["rgb", "grey16", "rgba"])
def test_result_is_writable_and_owned(make):
    data = encode(make(), "PNG")
    a = load_image(data)
    assert a.flags.writeable and a.flags.c_contiguous
    assert a.flags.owndata and a.base is None  # its own memory: not a view of Pillow's buffer or another array
    a[0, 0] = (1, 2, 3)  # callers may edit the array in place ...
    assert tuple(a[0, 0]) == (1, 2, 3)
    b = load_image(data)
    assert tuple(b[0, 0]) != (1, 2, 3) and not np.shares_memory(a, b)  # ... and nobody else sees the edit


# --- fuzzing ----------------------------------------------------------------

MAGIC = [b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0",
         b"GIF89a", b"GIF87a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


def check_total(data):
    try:
        a = load_image(data)
    except ImageError:
        return
    assert_rgb(a)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_give_image_error_or_a_picture(data):
    check_total(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_random_bytes_after_magic_numbers(magic, rest):
    check_total(magic + rest)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_corrupted_real_png(at, junk):
    data = bytearray(encode(Image.fromarray(picture()), "PNG"))
    at %= len(data)
    data[at:at + len(junk)] = junk
    check_total(bytes(data))
