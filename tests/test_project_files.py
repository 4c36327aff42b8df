"""The files that install, configure and run the project agree with each other."""

import os
import re
import tomllib
from pathlib import Path

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


def test_ci_runs_the_readme_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert "set -euxo pipefail" in text
    assert "README.md" in text  # the test command is read from the README, not copied


def test_requirements_never_pull_torch():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = [line.split("#")[0].strip().lower() for line in (ROOT / name).read_text().splitlines()]
        assert not [line for line in lines if re.match(r"torch\b", line)], name


def test_streamlit_config_keeps_the_app_offline():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["headless"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 50


def test_streamlit_config_never_shows_students_a_traceback():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"  # valid in 1.67: full, stacktrace, type, none
