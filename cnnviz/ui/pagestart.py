"""What the pages that ask why (what each filter looks for, what fools it, two pictures side by side) share:
their start, and the choice of a picture.

They draw no sidebar. Its widgets keep their values across pages only because a page that does not draw
them lets Streamlit drop them, and `sidebar.restore_widget` then puts the saved value back; a second page
drawing the same widgets would hand them over with a stale value instead (presentation mode switching
itself off on the way back to the walkthrough). So these pages read presentation mode as the sidebar saved
it, and each offers its own choice of picture.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnviz import samples
from cnnviz.ui import state
from cnnviz.ui.common import PRESENTATION_CSS

YOURS = "your picture"


def start() -> bool:
    """Take the link's sample on a session's first run; apply presentation mode; returns whether it is on."""
    state.init_from_url()
    presentation = bool(st.session_state.get("_saved_presentation", False))  # sidebar.save_widget's copy
    if presentation:
        st.html(PRESENTATION_CSS)  # only a style: takes no room on the page
    return presentation


def choices() -> list[str]:
    """The pictures to choose from: this session's upload or photo (if any), then every sample."""
    return ([YOURS] if "upload" in st.session_state else []) + samples.sample_names()


def current_choice() -> str:
    """The walkthrough's picture, as one of `choices()`."""
    name, _ = state.current_picture()
    return YOURS if st.session_state.get("source") == "upload" and "upload" in st.session_state else name


def picture_of(choice: str) -> np.ndarray:
    """uint8 (H, W, 3) of a choice from `choices()`."""
    return st.session_state["upload"] if choice == YOURS else state.sample_picture(choice)


def pick(label: str, key: str, start: str | None = None, container=st) -> str:
    """A selectbox of `choices()` starting at `start` (default: the walkthrough's picture) -> the choice."""
    names = choices()
    first = start or current_choice()
    if st.session_state.get(key) not in names:  # e.g. "your picture" after the upload was replaced by a sample
        st.session_state.pop(key, None)
    return container.selectbox(label, names, index=names.index(first) if first in names else 0, key=key)
