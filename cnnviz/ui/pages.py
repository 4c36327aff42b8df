"""The app's pages, defined once: app.py registers them, views switch to them.

A page's title and url_path live only here, so `st.switch_page(walkthrough_page())` always names
the same page that `st.navigation(all_pages())` registered.

The pages are made afresh on each call, not cached for the process: an `st.Page` must be made
inside a script run (outside one it is an empty shell), and `st.navigation` marks the chosen
page object as runnable for that run, so one object shared by two sessions' runs would race.
Making one costs microseconds.

The views are imported inside the functions because the views themselves import this module
(the model-file and training pages switch to the walkthrough).
"""

from __future__ import annotations

import streamlit as st


def walkthrough_page() -> st.Page:
    """The step-by-step walkthrough: the default page, at /walkthrough."""
    from cnnviz.ui.walkthrough import render_walkthrough

    return st.Page(render_walkthrough, title="Walkthrough", url_path="walkthrough", default=True)


def learn_page() -> st.Page:
    from cnnviz.ui.learn import render_learn

    return st.Page(render_learn, title="Watch it learn", url_path="learn")


def teach_page() -> st.Page:
    from cnnviz.ui.teach import render_teach

    return st.Page(render_teach, title="Teach your own classes", url_path="teach")


def modelfile_page() -> st.Page:
    from cnnviz.ui.modelfile import render_modelfile

    return st.Page(render_modelfile, title="Your own model file", url_path="model")


def filters_page() -> st.Page:
    from cnnviz.ui.preferences import render_preferences

    return st.Page(render_preferences, title="What each filter looks for", url_path="filters")


def lab_page() -> st.Page:
    from cnnviz.ui.lab import render_lab

    return st.Page(render_lab, title="What fools it", url_path="lab")


def compare_page() -> st.Page:
    from cnnviz.ui.compare import render_compare

    return st.Page(render_compare, title="Two pictures side by side", url_path="compare")


def class_page() -> st.Page:
    from cnnviz.ui.teacher import render_teacher

    return st.Page(render_teacher, title="Run a class", url_path="class")


def join_page() -> st.Page:
    from cnnviz.ui.teacher import render_join

    return st.Page(render_join, title="Join a class", url_path="join")


def all_pages() -> list[st.Page]:
    """Every page, in the order the navigation lists them."""
    return [walkthrough_page(), filters_page(), lab_page(), compare_page(), learn_page(), teach_page(),
            modelfile_page(), join_page(), class_page()]
