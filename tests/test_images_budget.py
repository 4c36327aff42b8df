"""load_image under abuse: every accepted picture costs at most BUDGET_MB of extra memory and
BUDGET_CPU seconds of CPU to decode and trace; every refused one says why in plain words.

The hostile files are tiny (a few hundred kB at most) and made here: zlib streams of zeros that
claim tens of millions of pixels, in every mode Pillow decodes differently (RGB, RGBA, 16-bit grey,
float TIFF, palette, 1-bit, RLE bitmaps, ...), plus a real 6000x4000 camera-like JPEG.

Each file is measured in its own Python process, which loads the shipped model, notes its memory,
then runs load_image + trace once and reports its peak memory above that (VmHWM in /proc, the peak
reset just before) and its CPU time (process_time: CPU, not wall time, so a busy machine does not
fail the test). These are resource budgets from issue 15, not speed figures: the largest accepted
file stays far below them (benchmarks/decode_memory.py prints the table).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz import images

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MB = 400.0  # extra memory for one picture's decode + trace (issue 15)
BUDGET_CPU = 4.0  # CPU seconds for the same

# The child: load the model, note the memory, reset the peak, load + trace one file, report as JSON.
CHILD = r"""
import json, sys, time
import numpy as np
from cnnviz.model import load_model, trace

if len(sys.argv) > 2:  # another images module (benchmarks/decode_memory.py measures the old one too)
    import importlib.util
    spec = importlib.util.spec_from_file_location("images_under_test", sys.argv[2])
    images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(images)
else:
    from cnnviz import images

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

model = load_model()
trace(model, np.zeros((40, 40, 3), np.uint8))  # the first trace's one-off allocations are not the file's
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux 4.0+)
except OSError:
    pass
base = status("VmRSS:")
cpu = time.process_time()
out = {"accepted": True, "message": None, "shape": None}
try:
    picture = images.load_image(sys.argv[1])
    stages = trace(model, picture)
    out["shape"] = list(picture.shape)
    out["sum"] = float(stages[-1].output.sum())
except images.ImageError as err:
    out.update(accepted=False, message=str(err))
out["cpu_s"] = time.process_time() - cpu
out["extra_mb"] = status("VmHWM:") - base
print(json.dumps(out))
"""


def measure(path, images_module=None) -> dict:
    """Decode + trace `path` in a fresh process: {"accepted", "message", "shape", "extra_mb", "cpu_s"}."""
    args = [sys.executable, "-c", CHILD, str(path)] + ([str(images_module)] if images_module else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the files


def _zeros_stream(rows: int, row_bytes: int) -> bytes:
    """zlib of `rows` rows of zeros, each `row_bytes` long (the filter byte included), without making them all."""
    z = zlib.compressobj(9)
    per = max(1, (1 << 20) // row_bytes)  # about 1 MB of rows per call
    block = bytes(row_bytes * per)
    out = [z.compress(block) for _ in range(rows // per)]
    out.append(z.compress(bytes(row_bytes * (rows % per))))
    return b"".join(out) + z.flush()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def png(w: int, h: int, bits: int = 8, colour: int = 2, interlace: bool = False, extra: bytes = b"",
        idat: int | None = None) -> bytes:
    """A black w x h PNG (colour type `colour`, `bits` per sample) of zlib-compressed zeros: tiny however big.

    `extra`: chunks to put before the pixels; `idat`: cut the pixels' stream into chunks of this many bytes.
    """
    def row_bytes(width):
        return 1 + math.ceil(width * bits * PNG_CHANNELS[colour] / 8)  # the filter byte, then the samples

    if interlace:  # Adam7: seven smaller pictures one after the other, in one zlib stream
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        z = zlib.compressobj(9)
        parts = []
        for x0, y0, dx, dy in passes:
            pw, ph = math.ceil(max(0, w - x0) / dx), math.ceil(max(0, h - y0) / dy)
            if pw and ph:
                rb = row_bytes(pw)
                per = max(1, (1 << 20) // rb)
                for start in range(0, ph, per):
                    parts.append(z.compress(bytes(rb * min(per, ph - start))))
        stream = b"".join(parts) + z.flush()
    else:
        stream = _zeros_stream(h, row_bytes(w))
    ihdr = struct.pack(">IIBBBBB", w, h, bits, colour, 0, 0, int(interlace))
    plte = _chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    step = len(stream) if idat is None else idat
    chunks = b"".join(_chunk(b"IDAT", stream[k:k + step]) for k in range(0, len(stream), step))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + plte + extra + chunks + _chunk(b"IEND", b"")


def tiff(w: int, h: int, spp: int = 1, bits: int = 32, sample_format: int = 3, photometric: int = 1,
         rows_per_strip: int | None = None, tile: int | None = None, padding: int = 0) -> bytes:
    """A little-endian, deflate-compressed TIFF of zeros (default: one float32 grey sample a pixel).

    `tile`: declare square tiles of that side (their data is a few junk bytes: such files must be
    refused from the header); `padding`: that many random bytes after the pixels (a bigger file).
    """
    if tile is not None:
        return _tiled_tiff(w, h, tile)
    rps = h if rows_per_strip is None else rows_per_strip
    strip_bytes = math.ceil(w * spp * bits / 8) * rps
    strips = math.ceil(h / rps)
    last = h - rps * (strips - 1)
    full = zlib.compress(bytes(strip_bytes), 9) if strip_bytes <= 1 << 28 else _zeros_stream(rps, strip_bytes // rps)
    tail = zlib.compress(bytes(math.ceil(w * spp * bits / 8) * last), 9)
    counts = [len(full)] * (strips - 1) + [len(tail)]
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, spp, None), (259, 3, 1, 8), (262, 3, 1, photometric),
               (273, 4, strips, None), (277, 3, 1, spp), (278, 4, 1, rps), (279, 4, strips, None),
               (339, 3, spp, None)]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    arrays = {258: struct.pack(f"<{spp}H", *[bits] * spp), 339: struct.pack(f"<{spp}H", *[sample_format] * spp)}
    pixels_at = data_at + 8 * spp + 8 * strips + 8
    offsets = [pixels_at + len(full) * k for k in range(strips)]
    arrays[273] = struct.pack(f"<{strips}I", *offsets)
    arrays[279] = struct.pack(f"<{strips}I", *counts)
    ifd, extra = [struct.pack("<H", len(entries))], b""
    for tag, kind, count, value in entries:
        if value is None:
            body = arrays[tag]
            if len(body) <= 4:
                ifd.append(struct.pack("<HHI", tag, kind, count) + body.ljust(4, b"\x00"))
                continue
            ifd.append(struct.pack("<HHII", tag, kind, count, data_at + len(extra)))
            extra += body
        elif kind == 3:
            ifd.append(struct.pack("<HHIHH", tag, kind, count, value, 0))
        else:
            ifd.append(struct.pack("<HHII", tag, kind, count, value))
    ifd.append(struct.pack("<I", 0))
    head = b"II*\x00" + struct.pack("<I", ifd_at) + b"".join(ifd) + extra
    head = head.ljust(pixels_at, b"\x00")
    return head + full * (strips - 1) + tail + np.random.default_rng(0).bytes(padding)


def _tiled_tiff(w: int, h: int, tile: int) -> bytes:
    """A w x h float32 TIFF cut in tile x tile tiles, declared only: one tile of junk."""
    entries = [(256, 4, w), (257, 4, h), (258, 3, 32), (259, 3, 8), (262, 3, 1), (277, 3, 1), (322, 4, tile),
               (323, 4, tile), (324, 4, 8 + 2 + 12 * 11 + 4), (325, 4, 16), (339, 3, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHIHH", t, k, 1, v, 0) if k == 3 else struct.pack("<HHII", t, k, 1, v) for t, k, v in entries)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(16)


def bmp_rle(w: int, h: int, rle4: bool = False, fill: bool = True, run: int = 255) -> bytes:
    """A w x h RLE8 (or RLE4) bitmap: runs of `run` pixels (or, with fill=False, only 'end of bitmap')."""
    if fill:
        row = bytes([run, 0x11]) * (w // run) + (bytes([w % run, 0x11]) if w % run else b"") + b"\x00\x00"
        body = row * h + b"\x00\x01"
    else:
        body = b"\x00\x01"
    colours = 16 if rle4 else 256
    palette = b"".join(bytes([i % 256, i % 256, i % 256, 0]) for i in range(colours))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 4 if rle4 else 8, 2 if rle4 else 1, len(body), 2835, 2835,
                       colours, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + palette + body


def camera_jpeg(w: int = 6000, h: int = 4000, quality: int = 90, seed: int = 0, **kw) -> bytes:
    """A camera-like photo: smooth gradients plus a little sensor noise, saved as a JPEG."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    rgb = np.empty((h, w, 3), np.uint8)
    for c, (a, b) in enumerate([(180, 40), (90, 120), (60, 150)]):
        v = a * x + b * y + 20 * np.sin(9 * x + 5 * c) * np.cos(7 * y)
        v += rng.integers(-12, 13, (h, w), dtype=np.int16)  # sensor noise
        rgb[..., c] = np.clip(v, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def scan_bomb(w: int = 6000, h: int = 4000, scans: int = 5000) -> bytes:
    """A progressive JPEG with `scans` extra scans of about 35 bytes that each sweep every block.

    Each scan is "no coefficients here" for all the picture's blocks at once (runs of 32767 empty
    blocks from a one-code Huffman table), and libjpeg still visits every block for every scan,
    even when asked for a 1/8-scale picture: 2000 of them cost about 4 s of CPU.
    """
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    table = b"\x11" + bytes([1] + [0] * 15) + b"\xe0"  # AC table 1: one 1-bit code, '0', for symbol 0xE0 (EOB14)
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    bits = ("0" + "1" * 14) * -(-(-(-w // 8) * -(-h // 8)) // 32767)  # runs of 2^14 + 16383 empty blocks
    bits += "1" * (-len(bits) % 8)
    coded = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    sos = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x01, 1, 63, 0)  # Y only, tables 0/1, Ss=1 Se=63
    return data[:-2] + dht + (sos + coded) * scans + b"\xff\xd9"


def jpeg_with(segment: bytes, count: int, w: int = 8, h: int = 8) -> bytes:
    """A small black JPEG with `segment` repeated `count` times after its first segment."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, "JPEG")
    data = buf.getvalue()
    at = 4 + int.from_bytes(data[4:6], "big")  # the start marker, then the JFIF segment
    return data[:at] + segment * count + data[at:]


def gif_comment(count: int) -> bytes:
    """A small GIF whose comment is cut into `count` sub-blocks of one byte."""
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    data = buf.getvalue()
    at = 13 + 3 * 2 ** ((data[10] & 7) + 1)  # after the header and the global colour table
    return data[:at] + b"\x21\xfe" + b"\x01x" * count + b"\x00" + data[at:]


def pillow_file(mode: str, size, fmt: str, colour=0, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt, **kw)
    return buf.getvalue()


# name -> (how to make it, the message if it must be refused, or None if it must be accepted)
ASPECT, PIXELS, HEAVY, BROKEN = images.TOO_LONG_AND_THIN, images.TOO_MANY_PIXELS, images.TOO_HEAVY, images.BROKEN
FILES = {
    # the four
    "rgb-6300x6300.png": (lambda: png(6300, 6300), None),
    "grey16-6324x6324.png": (lambda: png(6324, 6324, bits=16, colour=0), None),
    "float32-6300x6300.tiff": (lambda: tiff(6300, 6300), None),
    "strip-1x39000000.png": (lambda: png(1, 39_000_000), ASPECT),
    # the same idea in every other way Pillow decodes
    "strip-39000000x1.png": (lambda: png(39_000_000, 1), ASPECT),
    "strip-1x5000.png": (lambda: png(1, 5000), ASPECT),
    "rgb-10000x4000.png": (lambda: png(10_000, 4000), None),
    "rgba-6300x6300.png": (lambda: png(6300, 6300, colour=6), None),
    "rgba16-6300x6300.png": (lambda: png(6300, 6300, bits=16, colour=6), None),
    "rgba-interlaced-6300x6300.png": (lambda: png(6300, 6300, colour=6, interlace=True), None),
    "grey-alpha16-6300x6300.png": (lambda: png(6300, 6300, bits=16, colour=4), None),
    "palette-transparent-6300x6300.png": (
        lambda: png(6300, 6300, colour=3, extra=_chunk(b"tRNS", b"\x00")), None),
    "one-bit-6300x6300.png": (lambda: png(6300, 6300, bits=1, colour=0), None),
    "rgb-6325x6325.png": (lambda: png(6325, 6325), PIXELS),  # just over MAX_PIXELS
    "rgb-idat-20000-6300x6300.png": (lambda: png(6300, 6300, idat=6), None),  # 20,000 pixel chunks
    "chunks-1600000.png": (lambda: png(8, 8, extra=_chunk(b"abCd", b"") * 1_600_000), HEAVY),  # 19 MB: 5 s
    "text-chunks-1300000.png": (lambda: png(8, 8, extra=_chunk(b"tEXt", b"k\x00v") * 1_300_000), HEAVY),
    "float32-padded-6300x6300.tiff": (lambda: tiff(6300, 6300, padding=19 * 2**20), None),  # the largest cost
    "float32-tiles-1000x1000.tiff": (lambda: tiff(1000, 1000, tile=20_000), HEAVY),  # a 1.6 GB tile buffer
    "float32-strips-6300x6300.tiff": (lambda: tiff(6300, 6300, rows_per_strip=16), None),
    "int32-6300x6300.tiff": (lambda: tiff(6300, 6300, bits=32, sample_format=2), None),
    "rgb-6300x6300.tiff": (lambda: tiff(6300, 6300, spp=3, bits=8, sample_format=1, photometric=2), None),
    "rle8-6300x6300.bmp": (lambda: bmp_rle(6300, 6300), None),
    "rle8-empty-6300x6300.bmp": (lambda: bmp_rle(6300, 6300, fill=False), BROKEN),  # Pillow: not enough data
    "rle8-ones-1400x1400.bmp": (lambda: bmp_rle(1400, 1400, run=1), None),  # 3.9 MB, a Python loop a pixel
    "rle8-ones-3000x3000.bmp": (lambda: bmp_rle(3000, 3000, run=1), HEAVY),  # 17 MB: 3.5 s of CPU in Pillow
    "rle4-3000x3000.bmp": (lambda: bmp_rle(3000, 3000, rle4=True), None),
    "rle4-6300x6300.bmp": (lambda: bmp_rle(6300, 6300, rle4=True), HEAVY),  # decoded in Python, pixel by pixel
    "palette-6300x6300.gif": (lambda: pillow_file("P", (6300, 6300), "GIF"), None),
    "camera-6000x4000.jpg": (lambda: camera_jpeg(), None),
    "camera-progressive-6000x4000.jpg": (lambda: camera_jpeg(progressive=True), None),
    "black-progressive-8000x5000.jpg": (lambda: pillow_file("RGB", (8000, 5000), "JPEG", progressive=True,
                                                            subsampling=0), None),
    "cmyk-8000x5000.jpg": (lambda: pillow_file("CMYK", (8000, 5000), "JPEG"), None),
    "cmyk-progressive-8000x5000.jpg": (lambda: pillow_file("CMYK", (8000, 5000), "JPEG", progressive=True), None),
    "scans-6000x4000.jpg": (lambda: scan_bomb(), HEAVY),
    "comments-5000000.jpg": (lambda: jpeg_with(b"\xff\xfe\x00\x02", 4_900_000), HEAVY),  # 19 MB: 6 s, 400 MB
    "app-segments-5000000.jpg": (lambda: jpeg_with(b"\xff\xe1\x00\x02", 4_900_000), HEAVY),  # 9 s, 700 MB
    "stray-bytes-19MB.jpg": (lambda: jpeg_with(b"\x00" * 2**20, 19), HEAVY),
    "exif-and-icc.jpg": (lambda: jpeg_with(b"\xff\xe2\xff\xff" + bytes(65533), 200), None),  # 13 MB of APP2
    "comment-blocks-9500000.gif": (lambda: gif_comment(9_500_000), HEAVY),  # 2 s of CPU in Pillow
    "rgba-5000x4000.webp": (lambda: pillow_file("RGBA", (5000, 4000), "WEBP", lossless=True, method=0), None),
    "rgba-8000x5000.webp": (lambda: pillow_file("RGBA", (8000, 5000), "WEBP", lossless=True, method=0), HEAVY),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")

    def make(name: str) -> Path:
        path = folder / name
        if not path.exists():
            path.write_bytes(FILES[name][0]())
        return path

    return make


@pytest.mark.parametrize("name", list(FILES))
def test_each_file_is_decoded_within_budget_or_refused_in_plain_words(made, name):
    path = made(name)
    assert path.stat().st_size < images.MAX_BYTES  # files that get past the size check: the danger is in decoding
    got = measure(path)
    expected = FILES[name][1]
    if expected is None:
        assert got["accepted"], f"{name} was refused: {got['message']}"
        h, w, c = got["shape"]
        assert c == 3 and max(h, w) <= images.MAX_SIDE
        assert abs(got["sum"] - 1) < 1e-4  # the trace ran to the end
        assert got["extra_mb"] <= BUDGET_MB, f"{name}: {got['extra_mb']:.0f} MB"
        assert got["cpu_s"] <= BUDGET_CPU, f"{name}: {got['cpu_s']:.2f} s of CPU"
    else:
        assert not got["accepted"] and got["message"] == expected
        assert got["extra_mb"] <= BUDGET_MB and got["cpu_s"] <= BUDGET_CPU  # refused cheaply, too


# ---------------------------------------------------------------- what comes out (in this process)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int, h: int) -> np.ndarray:
    """uint8 (h, w, 3): smooth in every direction, so any fair shrink gives nearly the same numbers."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1).astype(np.uint8)


def test_a_big_picture_comes_out_at_most_max_side_long_with_its_aspect_and_colours():
    x = gradient(3000, 2000)  # several bands, reduced by whole pixels, then resized
    a = images.load_image(encode(Image.fromarray(x), "PNG"))
    assert a.shape == (683, 1024, 3) and a.dtype == np.uint8 and a.flags.c_contiguous and a.flags.owndata
    want = np.asarray(Image.fromarray(x).resize((1024, 683), Image.Resampling.BOX)).astype(int)
    assert np.abs(a.astype(int) - want).max() <= 2  # the same picture as a one-step box resize


def test_pictures_up_to_max_side_are_kept_pixel_for_pixel():
    x = gradient(images.MAX_SIDE, 300)
    np.testing.assert_array_equal(images.load_image(encode(Image.fromarray(x), "PNG")), x)


def test_a_big_jpeg_is_drafted_then_shrunk_and_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 3000 wide, shown 3000 tall
    x = gradient(3000, 2000)
    a = images.load_image(encode(Image.fromarray(x), "JPEG", quality=95, exif=exif))
    assert a.shape == (1024, 683, 3)
    want = np.asarray(Image.fromarray(x).transpose(Image.Transpose.ROTATE_270).resize((683, 1024)))
    assert np.abs(a.astype(int) - want).mean() < 3


def test_alpha_is_composited_on_white_across_bands():
    px = np.zeros((2400, 2400, 4), np.uint8)
    px[..., 3] = 0  # transparent black: white once composited
    px[1200:, :, 3] = 255  # the lower half opaque black
    a = images.load_image(encode(Image.fromarray(px, "RGBA"), "PNG"))
    assert a.shape == (1024, 1024, 3)
    assert np.all(a[:500] == 255) and np.all(a[-500:] == 0)


def test_16_bit_grey_is_scaled_by_its_range_when_shrunk():
    g = np.full((2500, 3000), 0x8000, np.uint16)
    g[:, :1500] = 0xFFFF
    a = images.load_image(encode(Image.fromarray(g), "PNG"))
    assert a.shape == (853, 1024, 3)
    assert np.all(a[:, :500] == 255) and np.all(a[:, -500:] == 128)


def test_float_grey_takes_its_range_from_the_whole_picture_not_a_band():
    f = np.full((3000, 2000), 0.5, np.float32)  # 0..1 almost everywhere ...
    f[-1, -1] = 2.0  # ... but one value in the last band is not: so no value is scaled by 255
    f[0, 0] = np.nan
    a = images.load_image(encode(Image.fromarray(f, "F"), "TIFF", compression="tiff_adobe_deflate"))
    assert a.shape == (1024, 683, 3) and a[500, 300, 0] == 0  # round(0.5) -> 0, not 128
    f[-1, -1] = 1.0
    a = images.load_image(encode(Image.fromarray(f, "F"), "TIFF", compression="tiff_adobe_deflate"))
    assert a[500, 300, 0] == 128


@pytest.mark.parametrize("w, h, ok", [(1024, 1, True), (1, 1024, True), (1025, 52, True), (1025, 51, False),
                                      (52, 1025, True), (51, 1025, False), (20_000, 999, False)])
def test_long_thin_pictures_are_refused_only_when_they_would_need_shrinking(w, h, ok):
    data = encode(Image.new("RGB", (w, h), (10, 200, 30)), "PNG")
    if ok:
        a = images.load_image(data)
        assert max(a.shape[:2]) <= images.MAX_SIDE and np.all(a == (10, 200, 30))
    else:
        with pytest.raises(images.ImageError) as info:
            images.load_image(data)
        assert str(info.value) == images.TOO_LONG_AND_THIN


def test_structure_counts_stop_at_the_limit():
    base = png(8, 8)
    few = png(8, 8, extra=_chunk(b"abCd", b"") * 1000)
    assert images.load_image(few).shape == images.load_image(base).shape == (8, 8, 3)
    many = png(8, 8, extra=_chunk(b"abCd", b"") * (images.MAX_FILE_ITEMS + 1))
    with pytest.raises(images.ImageError, match="too much memory or time"):
        images.load_image(many)


@pytest.mark.parametrize("message", [images.TOO_LONG_AND_THIN, images.TOO_HEAVY])
def test_new_messages_are_plain_words(message):
    assert message[0].isupper() and message.endswith(".") and "Try" in message
    assert "PIL" not in message and "Error" not in message and "pixel" not in message.split(".")[0].lower()
