"""Convert between ONNX and cnnviz's .npz model files; the direction follows the file names.

    python -m cnnviz.convert MODEL.onnx --out MODEL.npz [--classes classes.txt]
                             [--mean R G B --std R G B] [--input-size H W]
    python -m cnnviz.convert MODEL.npz --out MODEL.onnx

Class names and preprocessing given here win over the ones stored in the ONNX file; without
either, the classes are "class 1".."class K" and pixels are only scaled to 0..1 (the model's
meta says so). Exit status 0 on success, 1 with one plain message on stderr otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .model import ModelError
from .modelfile import load_model, save_model
from .onnx import classes_from_text, export_onnx, import_onnx

MAX_CLASSES_BYTES = 100_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m cnnviz.convert", description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="MODEL.onnx to import, or MODEL.npz to export")
    p.add_argument("--out", type=Path, required=True, help="MODEL.npz (from ONNX) or MODEL.onnx (from .npz)")
    p.add_argument("--classes", type=Path, help="classes.txt: one class name a line, in output order")
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="per-channel mean of 0..1 pixels")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="per-channel spread of 0..1 pixels")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                   help="picture size, if the ONNX file leaves it open")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        print(convert(args))
    except ModelError as e:
        print(f"cnnviz.convert: {e}", file=sys.stderr)
        return 1
    return 0


def convert(args: argparse.Namespace) -> str:
    """Do the conversion `args` asks for -> one line saying what was written."""
    src, out = args.model.suffix.lower(), args.out.suffix.lower()
    if (src, out) == (".onnx", ".npz"):
        model = import_onnx(args.model, read_classes(args.classes), args.input_size, args.mean, args.std)
        _write(args.out, lambda f: save_model(model, f))
        note = {"default": "; no class names given, so they are class 1..K (use --classes)"}
        return (f"wrote {args.out}: {len(model.layers)} layers ({' '.join(la.name for la in model.layers)}), "
                f"{len(model.classes)} classes, {model.input_size[0]}x{model.input_size[1]} input"
                + note.get(model.meta.get("classes_from"), ""))
    if (src, out) == (".npz", ".onnx"):
        if args.classes or args.mean or args.std or args.input_size:
            raise ModelError("--classes, --mean, --std and --input-size apply to importing an .onnx file")
        model = load_model(args.model)
        data = export_onnx(model)
        _write(args.out, lambda f: f.write(data))
        return f"wrote {args.out}: {len(model.layers)} layers, {len(model.classes)} classes, ONNX opset 17"
    raise ModelError("convert MODEL.onnx --out MODEL.npz, or MODEL.npz --out MODEL.onnx")


def read_classes(path: Path | None) -> list[str] | None:
    """classes.txt -> class names, one a line (None without a file)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CLASSES_BYTES + 1)
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > MAX_CLASSES_BYTES:
        raise ModelError(f"{path} is larger than {MAX_CLASSES_BYTES:,} bytes; it should hold one class name a line")
    try:
        return classes_from_text(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not UTF-8 text") from None


def _write(path: Path, write) -> None:
    """write(file) into `path`, with an unwritable place as one plain message."""
    try:
        with open(path, "wb") as f:
            write(f)
    except OSError as e:
        raise ModelError(f"cannot write {path}: {e.strerror or e}") from None


if __name__ == "__main__":
    sys.exit(main())
