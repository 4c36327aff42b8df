"""Says, at the end of every run (where `-q` still shows it), the test order's seed, whether this is CI,
and whether the PyTorch comparisons ran: what is needed to repeat a failure or to trust a green run."""

from __future__ import annotations

from tests.torchref import INSTALL, in_ci


def status_lines(config) -> list[str]:
    lines = []
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        lines.append(f"test order: --randomly-seed={seed} repeats it (pytest-randomly)")
    try:  # at the end of a run the comparisons have usually imported it already
        import torch

        torch = f"torch {torch.__version__}: the PyTorch comparisons run"
    except ImportError:
        torch = f"torch cannot be imported: the PyTorch comparisons {'fail' if in_ci() else 'skip'} ({INSTALL})"
    lines.append(f"CI: {'set, so nothing may be skipped for want of torch or a browser' if in_ci() else 'not set'}; "
                 f"{torch}")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in status_lines(config):
        terminalreporter.write_line(line)
