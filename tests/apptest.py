"""AppTest helpers shared by the app's test files: start a session on the app, read its banner and header."""

from pathlib import Path

import pytest

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(**query) -> AppTest:
    """A fresh session on the app with these query parameters, after its first run."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def banner(at) -> str:
    """The prediction line shown above every step."""
    return next(i.value for i in at.info if "Prediction" in i.value)


def header(at) -> str:
    """The page's first header (on the walkthrough: "N. Step name")."""
    return next(h.value for h in at.header)
