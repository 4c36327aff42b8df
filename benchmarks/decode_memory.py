"""What each hostile picture costs to decode and trace: extra memory and CPU, accepted or refused.

    python benchmarks/decode_memory.py                      # every file of tests/test_images_budget.py
    python benchmarks/decode_memory.py --before bd310d7     # also the images.py of that commit, side by side
    python benchmarks/decode_memory.py --only png --only tiff

Each file is made in a temporary folder, then loaded and traced in a fresh Python process, which
reports its peak memory above what it held after loading the model (VmHWM, reset first) and its CPU
time (process_time). The budget of issue 15 is 400 MB and 4 s of CPU per accepted file; the figures
the issue found with the old code, on a 2-core, 24 GiB machine, are printed beside the four it named.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from tests.test_images_budget import BUDGET_CPU, BUDGET_MB, FILES, measure  # noqa: E402

# issue 15: extra MB and CPU s with the 40-megapixel cap alone
ISSUE = {
    "rgb-6300x6300.png": "113 KB: +682 MB",
    "grey16-6324x6324.png": "76 KB: +840 MB",
    "float32-6300x6300.tiff": "247 KB: +1,268 MB",
    "strip-1x39000000.png": "148 KB: +1,563 MB, 4 s CPU",
}

SHORT = {  # the refusal messages, in a word
    "TOO_MANY_PIXELS": "too many pixels", "TOO_LONG_AND_THIN": "long and thin", "TOO_HEAVY": "too heavy",
    "BROKEN": "broken", "NOT_A_PICTURE": "not a picture", "TOO_BIG_FILE": "file too big", "NO_PIXELS": "no pixels",
}


def verdict(got: dict) -> str:
    if got["accepted"]:
        h, w = got["shape"][:2]
        return f"accepted {w}x{h}"
    from cnnviz import images

    word = next((w for name, w in SHORT.items() if getattr(images, name, None) == got["message"]), got["message"])
    return f"refused: {word}"


def old_module(rev: str, folder: Path) -> Path:
    path = folder / f"images_{rev}.py"
    path.write_text(subprocess.run(["git", "show", f"{rev}:cnnviz/images.py"], cwd=ROOT, check=True,
                                   capture_output=True, text=True).stdout)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="REV", help="also measure cnnviz/images.py as of this git revision")
    parser.add_argument("--only", action="append", default=[], help="only files whose name contains this")
    args = parser.parse_args()
    names = [n for n in FILES if not args.only or any(o in n for o in args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        before = old_module(args.before, folder) if args.before else None
        head = f"{'file':36} {'size':>9}"
        if before:
            head += f" | {'before: MB':>10} {'CPU s':>6}  {'':22}"
        head += f" | {'now: MB':>8} {'CPU s':>6}  {'':22} | issue 15 (old)"
        print(head)
        print("-" * len(head))
        worst_mb = worst_cpu = 0.0
        for name in names:
            path = folder / name
            path.write_bytes(FILES[name][0]())
            size = path.stat().st_size
            row = f"{name:36} {size / 1024:>6.0f} KB"
            if before:
                old = measure(path, before)
                row += f" | {old['extra_mb']:>10.0f} {old['cpu_s']:>6.2f}  {verdict(old):22}"
            now = measure(path)
            row += f" | {now['extra_mb']:>8.0f} {now['cpu_s']:>6.2f}  {verdict(now):22} | {ISSUE.get(name, '')}"
            print(row, flush=True)
            worst_mb, worst_cpu = max(worst_mb, now["extra_mb"]), max(worst_cpu, now["cpu_s"])
            path.unlink()
        print(f"\nnow, worst of all: {worst_mb:.0f} MB (budget {BUDGET_MB:.0f}), {worst_cpu:.2f} s of CPU "
              f"(budget {BUDGET_CPU:.0f})")


if __name__ == "__main__":
    main()
