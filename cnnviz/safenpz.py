"""Reading a .npz that a stranger made: every array's header is checked before any array is read.

`np.load(..., allow_pickle=False)` never unpickles, but it trusts the shape each header
declares: a 300-byte member that claims a (10**12,) array makes NumPy allocate that much
memory before it notices the data is missing. `read_npz` first reads every header (a few
hundred bytes each) and refuses object arrays, odd dtypes, too many arrays and too many
numbers; only then does it read the arrays.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"

PICKLED = "it holds pickled Python objects, which are never loaded because they could run code"
NOT_NPZ = "it is not a .npz file (a model saved by cnnviz is a .npz file)"
SINGLE_NPY = "it is a single NumPy array (.npy), not a cnnviz model file (.npz)"

# What the zip and NumPy readers raise on malformed input.
_READ_ERRORS = (
    OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError,
    zlib.error, struct.error, SyntaxError, OverflowError, MemoryError, TypeError, IndexError, AttributeError,
    tokenize.TokenError,  # NumPy re-reads a malformed header with Python's tokenizer
)


class NpzError(ValueError):
    """A file `read_npz` refuses; str(err) says why in plain words."""


@dataclass(frozen=True)
class NpzLimits:
    max_arrays: int = 256
    max_elements: int = 5_000_000  # in any one number array
    max_total: int = 20_000_000  # in all number arrays together
    max_text: int = 200_000  # characters in all text arrays together


def read_npz(source, limits: NpzLimits = NpzLimits()) -> dict[str, np.ndarray]:
    """A path, bytes or binary file object holding an .npz -> {name: array}.

    Only number arrays (int, uint, float of up to 8 bytes) and text arrays are read, within
    `limits`. Anything else raises NpzError, and nothing else escapes.
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _read(io.BytesIO(bytes(source)), limits)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return _read(f, limits)
        if hasattr(source, "read"):
            if source.seekable():
                source.seek(0)
            return _read(source, limits)
    except NpzError:
        raise
    except FileNotFoundError:
        raise NpzError("the file is not there") from None
    except _READ_ERRORS as e:
        raise NpzError(f"{NOT_NPZ}, or it is damaged ({type(e).__name__})") from None
    raise NpzError(NOT_NPZ)


def _read(f, limits: NpzLimits) -> dict[str, np.ndarray]:
    start = f.read(len(NPY_MAGIC))
    f.seek(0)
    if start.startswith(NPY_MAGIC):
        _, _, dtype = _header(f)
        raise NpzError(PICKLED if dtype.hasobject else SINGLE_NPY)
    if not start.startswith(ZIP_MAGIC):
        raise NpzError(NOT_NPZ)
    with zipfile.ZipFile(f) as z:
        members = z.infolist()
        if len(members) > limits.max_arrays:
            raise NpzError(f"it holds {len(members)} entries; a model has at most {limits.max_arrays}")
        for m in members:
            if not m.filename.endswith(".npy"):
                raise NpzError(f"it holds {m.filename[:60]!r}, which is not a NumPy array")
        numbers = text = 0
        for m in members:
            with z.open(m) as member:
                shape, _, dtype = _header(member)
            n, chars = _check_array(m.filename[:-4], shape, dtype, limits)
            numbers, text = numbers + n, text + chars
        if numbers > limits.max_total:
            raise NpzError(f"its arrays hold {numbers:,} numbers in all; the limit is {limits.max_total:,}")
        if text > limits.max_text:
            raise NpzError(f"it holds {text:,} characters of text; the limit is {limits.max_text:,}")
        out = {}
        for m in members:  # every header is known to be sane: now the data
            with z.open(m) as member:
                out[m.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
        return out


def _header(f) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from an .npy header; reads a few hundred bytes at most."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise NpzError(f"it uses NumPy file format {version[0]}.{version[1]}, which cnnviz does not read")


def _check_array(name: str, shape: tuple, dtype: np.dtype, limits: NpzLimits) -> tuple[int, int]:
    """Refuse what we never read; returns (numbers, characters) the array holds."""
    if dtype.hasobject:
        raise NpzError(PICKLED)
    if any(d < 0 for d in shape):
        raise NpzError(f"the array {name[:60]!r} has an impossible shape")
    n = math.prod(shape)
    if dtype.fields is None and dtype.subdtype is None:
        if dtype.kind in "fiu" and dtype.itemsize <= 8:
            if n > limits.max_elements:
                raise NpzError(f"the array {name[:60]!r} holds {n:,} numbers; the limit is {limits.max_elements:,}")
            return n, 0
        if dtype.kind == "U":
            chars = n * (dtype.itemsize // 4)
            if chars > limits.max_text:
                raise NpzError(f"the array {name[:60]!r} holds {chars:,} characters; the limit is {limits.max_text:,}")
            return 0, chars
    raise NpzError(f"the array {name[:60]!r} holds {dtype.str!r} values; a model holds only plain numbers and text")
