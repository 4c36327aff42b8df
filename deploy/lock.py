"""Print deploy/constraints.txt: the installed version of every package requirements.txt needs, its
dependencies included, for the container image (pip install -r requirements.txt -c constraints.txt).

    python deploy/lock.py > deploy/constraints.txt

Run it in an environment where `pip install -r requirements.txt` was done and the tests pass: it pins
what was tested. Dependencies behind an environment marker are followed as they evaluate here (Linux,
this Python): run it on Linux with the image's Python minor version (3.11). Needs `packaging`, which
Streamlit depends on.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
HEADER = """\
# Exact versions for the container image (deploy/Dockerfile): every package requirements.txt needs and
# their dependencies, as installed where the tests passed. Written by `python deploy/lock.py`; change
# requirements.txt, reinstall, run the tests, then write this again. Do not edit by hand.
"""


def requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def closure(reqs: list[Requirement]) -> dict[str, tuple[str, str]]:
    """{canonical name: (name, installed version)} for `reqs` and everything they need."""
    pinned: dict[str, tuple[str, str]] = {}
    todo = [(r, "") for r in reqs]  # (requirement, the extra of its parent that asked for it)
    extras_done: set[tuple[str, str]] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(req.name)
        new_extras = {e for e in req.extras if (key, e) not in extras_done}  # psycopg[binary] needs psycopg-binary
        if key in pinned and not new_extras:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise SystemExit(f"{req.name} is not installed: pip install -r requirements.txt first") from None
        if dist.version not in req.specifier:
            raise SystemExit(f"{req.name} {dist.version} is installed, but {req} is required")
        pinned[key] = (dist.metadata["Name"], dist.version)
        extras_done |= {(key, e) for e in new_extras}
        todo += [(Requirement(r), e) for r in dist.requires or () for e in ("", *sorted(new_extras))]
    return pinned


def main() -> int:
    pinned = closure(requirements())
    sys.stdout.write(HEADER + "".join(f"{name}=={version}\n" for name, version in
                                      (pinned[k] for k in sorted(pinned))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
