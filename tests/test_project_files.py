"""The files that install, configure and run the project agree with each other, and the gate holds:
CI installs what the tests need, runs the README's test command and fails when anything fails."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests import torchref

ROOT = Path(__file__).resolve().parents[1]
APP_CMD = (
    "python -m pip install -r requirements.txt && "
    "python -m streamlit run app.py --server.address 127.0.0.1 --server.port 8501"
)
TEST_CMD = "python -m pip install -r requirements-dev.txt && python -m pytest -q"


def code_blocks(text):
    return [b.strip() for b in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_the_two_commands():
    assert code_blocks((ROOT / "README.md").read_text())[:2] == [APP_CMD, TEST_CMD]


# ---------------------------------------------------------------- .ci/run, run with stand-ins

# Stand-ins for the commands .ci/run calls: each writes one line "name args CI=..." to $STUB_LOG.
# python exits with $TORCH_RC for the torch install and $PYTEST_RC for pytest, 0 otherwise.
PYTHON_STUB = """#!/bin/sh
case "$*" in "-m pytest"*) echo "pytest sees CNNVIZ_TEST_POSTGRES_URL=$CNNVIZ_TEST_POSTGRES_URL" >> "$STUB_LOG" ;; esac
echo "python $* CI=$CI" >> "$STUB_LOG"
case "$*" in
  "-m pip install torch==2.13.0") exit "${TORCH_RC:-0}" ;;
  "-m pytest"*) exit "${PYTEST_RC:-0}" ;;
esac
"""
APT_STUB = """#!/bin/sh
echo "apt-get $*" >> "$STUB_LOG"
"""
LOG_STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
"""
CHROMIUM_CHECK = "test -x /usr/bin/chromium\n"


def run_ci(tmp_path, readme=None, **env) -> tuple[int, list[str], str]:
    """Run a copy of .ci/run in a scratch checkout with apt-get, python, Chromium, service and runuser
    (which start PostgreSQL) stood in for.

    -> (exit status, the logged commands in order, stderr). `readme` replaces README.md's text.
    The only line changed in the copy is the Chromium check, pointed at a stand-in file.
    """
    checkout, bin_dir, log = tmp_path / "checkout", tmp_path / "bin", tmp_path / "log"
    (checkout / ".ci").mkdir(parents=True)
    bin_dir.mkdir()
    for name, text in (("python", PYTHON_STUB), ("apt-get", APT_STUB), ("chromium", "#!/bin/sh\n"),
                       ("service", LOG_STUB), ("runuser", LOG_STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = (ROOT / ".ci" / "run").read_text()
    assert script.count(CHROMIUM_CHECK) == 1
    (checkout / ".ci" / "run").write_text(script.replace(CHROMIUM_CHECK, f"test -x {bin_dir / 'chromium'}\n"))
    (checkout / "README.md").write_text(readme if readme is not None else (ROOT / "README.md").read_text())
    log.touch()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), **env}
    done = subprocess.run(["bash", str(checkout / ".ci" / "run")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    return done.returncode, log.read_text().splitlines(), done.stderr


def test_ci_is_an_executable_bash_script_that_stops_at_the_first_failure():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert ci.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euxo pipefail" in ci.read_text()


def test_ci_installs_everything_then_runs_the_readme_test_command_with_ci_set(tmp_path):
    status, log, err = run_ci(tmp_path)
    assert status == 0, err
    python = [line for line in log if line.startswith("python ")]
    assert python == ["python --version CI=true",
                      "python -m pip install -r requirements-dev.txt CI=true",
                      "python -m pip install torch==2.13.0 CI=true",
                      f"{TEST_CMD.split(' && ')[1]} CI=true"]
    installs = {word for line in log if line.startswith("apt-get install -y ") for word in line.split()[3:]}
    assert {"chromium", "nginx"} <= installs  # the browser tests and the deployment test need both
    assert {"postgresql", "poppler-utils"} <= installs  # the class store's PostgreSQL tests; pdftotext
    start = log.index("service postgresql start")
    assert log[start + 1] == "runuser -u postgres -- psql -v ON_ERROR_STOP=1"  # the SQL comes on its input
    assert log[-2].startswith("pytest sees CNNVIZ_TEST_POSTGRES_URL=postgresql+psycopg://")


def test_ci_takes_the_test_command_from_the_readme(tmp_path):
    readme = (ROOT / "README.md").read_text().replace(TEST_CMD, TEST_CMD + " -x -m 'not slow'")
    status, log, err = run_ci(tmp_path, readme)
    assert status == 0, err
    assert log[-1] == "python -m pytest -q -x -m not slow CI=true"


def test_ci_fails_when_torch_does_not_install(tmp_path):
    status, log, _ = run_ci(tmp_path, TORCH_RC="1")
    assert status != 0
    assert not [line for line in log if "pytest" in line]  # stopped before the tests


@pytest.mark.parametrize("rc", [1, 5])  # 5: pytest collected no tests
def test_ci_fails_when_the_tests_fail(tmp_path, rc):
    status, log, _ = run_ci(tmp_path, PYTEST_RC=str(rc))
    assert status == rc and log[-1].startswith("python -m pytest")


# ---------------------------------------------------------------- a missing torch: skip, but never in CI


@pytest.mark.parametrize("ci, fails", [(None, False), ("", False), ("false", False), ("0", False),
                                       ("FALSE", False), ("true", True), ("1", True), ("yes", True)])
def test_a_missing_torch_skips_with_its_reason_but_fails_in_ci(monkeypatch, ci, fails):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    try:  # both outcomes are caught here: a skip escaping this test would only make it look skipped
        torchref.require_torch()
    except (pytest.fail.Exception, pytest.skip.Exception) as e:
        outcome = e
    else:
        raise AssertionError("require_torch returned although torch cannot be imported")
    assert type(outcome) is (pytest.fail.Exception if fails else pytest.skip.Exception)
    assert re.search(r"torch is not installed .*python -m pip install torch==2\.13\.0", str(outcome)), outcome


def test_an_installed_torch_is_returned_in_and_out_of_ci(monkeypatch):
    fake = type(sys)("torch")
    monkeypatch.setitem(sys.modules, "torch", fake)
    for ci in ("true", "false"):
        monkeypatch.setenv("CI", ci)
        assert torchref.require_torch() is fake


# ---------------------------------------------------------------- requirements match the imports


def imported(paths) -> set[str]:
    """Top-level names of the absolute imports in these files, standard library left out."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names)


def distributions(modules: set[str], own=("cnnviz", "tests", "benchmarks", "common")) -> set[str]:
    """The installed distributions (normalised names) that provide these modules."""
    provided = packages_distributions()
    out = set()
    for m in modules - set(own):
        assert m in provided, f"{m} is imported but no installed distribution provides it"
        out |= {normalise(d) for d in provided[m]}
    return out


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(name: str) -> set[str]:
    """The distributions a requirements file names itself (not through -r)."""
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return {normalise(re.match(r"[A-Za-z0-9_.-]+", line)[0]) for line in lines if line and not line.startswith("-")}


def app_files():
    return [ROOT / "app.py", *sorted((ROOT / "cnnviz").rglob("*.py"))]


def test_requirements_list_exactly_what_the_app_imports():
    assert distributions(imported(app_files())) == listed("requirements.txt")


def test_dev_requirements_add_what_tests_and_benchmarks_import_and_nothing_else():
    files = [*sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]
    needed = distributions(imported(files)) - listed("requirements.txt") - {"torch"}  # torch: never listed
    plugins = {"pytest-randomly", "ruff"}  # used from the command line, never imported
    assert needed | plugins == listed("requirements-dev.txt")
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_app_code_never_imports_scipy_or_torch():
    assert not imported(app_files()) & {"scipy", "torch"}


def test_requirements_never_pull_torch():
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert "torch" not in listed(name), name


def test_tests_never_import_benchmarks():
    for path in sorted((ROOT / "tests").rglob("*.py")):
        assert not imported([path]) & {"benchmarks", "common"}, path


def test_torch_is_only_ever_required_through_torchref():
    """pytest.importorskip("torch") would skip in CI too: every test asks tests.torchref.require_torch()."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = getattr(node.func, "attr", getattr(node.func, "id", "")) if isinstance(node, ast.Call) else ""
            if name == "importorskip":
                assert not (node.args and getattr(node.args[0], "value", "").split(".")[0] == "torch"), \
                    f"{path}:{node.lineno}: use `torch = require_torch()` from tests.torchref"


# ---------------------------------------------------------------- Streamlit's settings


def test_streamlit_config_keeps_the_app_offline():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["headless"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 50


def test_streamlit_config_never_shows_students_a_traceback():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"  # valid in 1.67: full, stacktrace, type, none
