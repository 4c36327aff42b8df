"""The two training pages in AppTest: "Watch it learn" trains on the generated pictures (or a dataset
folder) and hands its network to the walkthrough; "Teach your own classes" takes uploads (refusing bad
files one by one), trains, shows the pictures kept aside, and walks through the student's network.

Every job a page starts here reads a clock that moves only when the test says so and passes a gate
the test can close (the `page_jobs` fixture), so no test waits for time to pass or for a machine's
speed: a test holds the job where it wants to look at the page, and waits only for events.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest
from streamlit.util import calc_hash  # noqa: E402

from cnnviz import jobs as J  # noqa: E402
from cnnviz import model as M  # noqa: E402
from cnnviz import teaching as T  # noqa: E402
from cnnviz.images import NOT_A_PICTURE  # noqa: E402
from cnnviz.ui import learn, teach, training  # noqa: E402
from cnnviz.ui.state import STEPS  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TINY = J.Limits(max_steps=12, every=4, eval_every=4, eval_images=100)
HANG = 300.0  # seconds: only so that a hung job fails its test with a message instead of hanging the run


@dataclass
class PageJobs:
    """The clock and the gate of every job the pages start in one test, and those jobs."""

    clock: J.ManualClock = field(default_factory=J.ManualClock)
    gate: J.StepGate = field(default_factory=lambda: J.StepGate(allow=float("inf")))  # open until a test closes it
    made: list = field(default_factory=list)


@pytest.fixture(autouse=True)
def page_jobs(monkeypatch):
    """Give every job the pages start a manual clock and the test's gate; after the test, stop each,
    let it through the gate and wait for it, so its server-wide training slot is free for the next test."""
    jobs = PageJobs()

    def new_job(*args, **kwargs):
        job = J.TrainingJob(*args, clock=jobs.clock, gate=jobs.gate, **kwargs)
        jobs.made.append(job)
        return job

    monkeypatch.setattr(training, "TrainingJob", new_job)
    yield jobs
    for job in jobs.made:
        job.stop()
    jobs.gate.open()
    for job in jobs.made:
        assert job.join(HANG), f"a {job.kind} job still trains after {HANG:.0f} s"


@pytest.fixture
def tiny_limits(monkeypatch):
    monkeypatch.setattr(learn, "LEARN_LIMITS", TINY)
    monkeypatch.setattr(teach, "TEACH_LIMITS", TINY)


def on_page(url_path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at._page_hash = calc_hash(url_path)  # function pages are found by the hash of their url_path
    return at.run()


def button(at, label):
    return next(b for b in at.button if b.label == label)


def train_until_done(at) -> J.TrainingJob:
    """Wait for the session's job to end (its clock stands still, so only its steps can end it), then
    run the page as its polling fragment would."""
    job = at.session_state[training.JOB_KEY]
    assert job.join(HANG), f"training hangs: still {job.status} at step {job.step} after {HANG:.0f} s"
    at.run()
    return job


def walk_to_walkthrough(at, label):
    button(at, label).click()
    at._page_hash = ""  # st.switch_page decides the page now
    at.run()
    assert not at.exception
    assert next(h.value for h in at.header) == "1. Pixels"


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- Watch it learn


def test_dataset_folder_from_the_command_line_or_the_environment():
    assert learn.dataset_folder(["--data", "/x/cifar"], {}) == Path("/x/cifar")
    assert learn.dataset_folder(["--data=/x/c"], {"CNNVIZ_DATA": "/y"}) == Path("/x/c")
    assert learn.dataset_folder(["-q", "tests"], {"CNNVIZ_DATA": "/y"}) == Path("/y")
    assert learn.dataset_folder(["--dat", "/x"], {}) is None  # no abbreviations: pytest's own flags stay theirs
    assert learn.dataset_folder([], {}) is None


def test_learn_trains_on_the_generated_pictures_and_walks_through_the_result(tiny_limits, page_jobs):
    at = on_page("learn")
    assert not at.exception
    assert at.title[0].value == "Watch it learn"
    assert not at.radio  # no dataset folder given: only the generated pictures
    page_jobs.gate.allow(4)  # hold the training after its first chunk, so the page shows it running
    button(at, "Start training").click().run()
    assert not at.exception
    job = at.session_state[training.JOB_KEY]
    assert job.kind == "learn" and job.steps == 12
    assert page_jobs.gate.held() == 4 and job.running
    at.run()  # the polling fragment's next redraw
    assert button(at, "Start training").disabled  # one training per session
    assert any(b.label == "Stop" for b in at.button)
    assert any("Step 4 of 12" in p.proto.text for p in at.get("progress"))
    page_jobs.gate.open()
    job = train_until_done(at)
    assert job.status == "finished" and job.step == 12
    assert not at.exception
    assert any("Done." in s.value for s in at.success)
    assert any(f"of {len(job.plan.test)} test pictures right" in m.value for m in at.markdown)
    walk_to_walkthrough(at, "Walk through this network")
    assert at.session_state["own_model"] is job.model
    assert "network: trained live on shapes and stripes" in next(i.value for i in at.info if "Prediction" in i.value)
    assert at.session_state["source"] == "upload"  # one of its test pictures is in the sidebar
    for k in range(2, len(STEPS) + 1):
        button(at, "Next").click().run()
        assert not at.exception, f"step {k}"
        assert next(h.value for h in at.header) == f"{k}. {STEPS[k - 1]}"


def test_the_page_keeps_its_training_alive_and_a_closed_tab_stops_it(monkeypatch, page_jobs):
    limits = J.Limits(max_steps=5000, max_seconds=600, heartbeat_timeout=10.0, every=2)
    monkeypatch.setattr(learn, "LEARN_LIMITS", limits)
    clock, gate = page_jobs.clock, page_jobs.gate
    gate.allow(0)
    at = on_page("learn")
    button(at, "Start training").click().run()
    job = at.session_state[training.JOB_KEY]
    assert gate.held() == 0
    for k in range(1, 5):  # a watching page: polls 6 s apart for 24 s, more than two heartbeat timeouts
        clock.advance(6.0)
        at.run()  # the page's polling fragment beats the job's heartbeat
        gate.allow(2 * k)
        assert gate.held() == 2 * k and job.running
    clock.advance(limits.heartbeat_timeout + 1)  # the tab is closed: nobody polls any more
    gate.open()
    assert job.join(HANG), f"the job hangs: still {job.status} after {HANG:.0f} s"
    assert job.status == "abandoned" and job.step == 8
    at.run()
    assert any("The page stopped asking" in s.value for s in at.success)
    assert job.model is not None  # what it learnt so far is still there, should the student come back


def test_learn_on_a_dataset_folder(tmp_path, monkeypatch, tiny_limits):
    for split, n in (("train", 8), ("test", 3)):
        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40, 40), colour).save(folder / f"{i}.png")
    monkeypatch.setenv("CNNVIZ_DATA", str(tmp_path))
    at = on_page("learn")
    assert len(at.radio) == 1 and at.radio[0].value == learn.GENERATED
    at.radio[0].set_value(at.radio[0].options[1]).run()
    assert not at.exception
    button(at, "Start training").click().run()
    job = train_until_done(at)
    assert job.plan.train.classes == ["blue", "red"] and len(job.plan.test) == 6
    assert job.model.meta["dataset"] == tmp_path.name


def test_a_broken_dataset_folder_falls_back_to_the_generated_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_DATA", str(tmp_path / "nothing-here"))
    at = on_page("learn")
    at.radio[0].set_value(at.radio[0].options[1]).run()
    assert not at.exception
    assert any("could not read the pictures" in e.value for e in at.error)


def _start_twice():
    import streamlit as st

    from cnnviz import jobs as J
    from cnnviz import teaching as T
    from cnnviz.ui import training

    train = T.teaching_dataset(per_class=4, seed=0)
    for _ in range(2):
        plan = T.live_plan(train, None, T.LiveConfig(epochs=1000, channels=(2, 2, 4, 4)), 2000, "x")
        st.markdown(training.start_job(plan, J.Limits(max_steps=2000, every=2), "learn") or "started")
    training.forget_job()  # stops it


def test_one_training_per_session(page_jobs):
    page_jobs.gate.allow(0)  # the first training certainly still runs when the second is asked for
    at = AppTest.from_function(_start_twice, default_timeout=60).run()
    assert not at.exception
    assert at.markdown[0].value == "started"
    assert at.markdown[1].value.startswith("Your network is still training. Stop it first")
    [job] = page_jobs.made  # the second was never made
    page_jobs.gate.open()
    assert job.join(HANG) and job.status == "stopped"  # forget_job stopped it


def test_a_busy_class_is_told_to_wait(tiny_limits, page_jobs):
    # Every slot of the server, once earlier tests' jobs (joined by page_jobs) have given theirs back.
    taken = [J.SLOTS.acquire(timeout=HANG) for _ in range(J.SLOTS.size)]
    try:
        assert all(taken), "a training slot was never given back"
        at = on_page("learn")
        button(at, "Start training").click().run()
        assert not at.exception
        assert any("The class is busy" in w.value for w in at.warning)
        assert training.JOB_KEY not in at.session_state
        assert [job.status for job in page_jobs.made] == ["new"]  # made, refused a slot, never started
        assert not button(at, "Start training").disabled
    finally:
        for ok in taken:
            if ok:
                J.SLOTS.release()


def test_a_failed_training_says_so_in_plain_words(tiny_limits, monkeypatch, caplog):
    live_plan = learn.live_plan

    def broken_plan(*args, **kwargs):
        plan = live_plan(*args, **kwargs)
        plan.train = None  # training on it raises a TypeError in the job's thread
        return plan

    monkeypatch.setattr(learn, "live_plan", broken_plan)
    at = on_page("learn")
    button(at, "Start training").click().run()
    job = train_until_done(at)
    assert job.status == "failed" and isinstance(job.error, TypeError)
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert J.ENDINGS["failed"] in shown
    assert "TypeError" not in shown and str(job.error) not in shown  # no internal text on screen
    assert any(r.exc_info and r.exc_info[1] is job.error for r in caplog.records)  # it is in the server's log


# ---------------------------------------------------------------- Teach your own classes


def _upload(at, slot, name, pictures, extra=()):
    at.text_input(key=f"teach_name_{slot}").set_value(name)
    files = [(f"{name}-{i}.png", png(p), "image/png") for i, p in enumerate(pictures)] + list(extra)
    at.file_uploader(key=f"teach_up_{slot}").set_value(files)


def test_teach_uploads_train_and_walk_through(tiny_limits):
    at = on_page("teach")
    assert not at.exception and at.title[0].value == "Teach your own classes"
    assert button(at, "Train").disabled
    rng = np.random.default_rng(0)
    kinds = ("vertical stripes", "circles", "checkerboards")
    for slot, kind in enumerate(kinds):
        extra = [("notes.png", b"this is not a picture", "image/png")] if slot == 1 else []
        _upload(at, slot, kind.split()[-1], [T.draw(kind, rng, 48) for _ in range(6)], extra)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"notes.png: {NOT_A_PICTURE}"]  # the bad file only; the others kept
    assert sum("**6 pictures**" == m.value for m in at.markdown) == 3
    assert not button(at, "Train").disabled
    button(at, "Train").click().run()
    job = train_until_done(at)
    assert job.kind == "teach" and job.status == "finished"
    assert job.model.classes == ("stripes", "circles", "checkerboards")
    assert len(job.plan.test) == 3 and len(job.plan.train) == 15
    assert any("kept aside" in m.value for m in at.markdown)
    assert not at.exception
    walk_to_walkthrough(at, "Walk through this network")
    banner = next(i.value for i in at.info if "Prediction" in i.value)
    assert "network: your classes: stripes, circles, checkerboards" in banner
    assert at.session_state["upload_name"].startswith("one of your pictures")


def test_teach_checks_names_and_counts():
    at = on_page("teach")
    rng = np.random.default_rng(1)
    _upload(at, 0, "same", [T.draw("circles", rng) for _ in range(5)])
    _upload(at, 1, "Same", [T.draw("crosses", rng) for _ in range(4)])
    at.segmented_control(key="teach_n").set_value(2)
    at.run()
    notes = " ".join(c.value for c in at.caption)
    assert "same name" in notes and "needs 1 more picture" in notes
    assert button(at, "Train").disabled
    assert teach.check_names(["ok", "a" * 30, "<b>x</b>", ""]) == [
        "Class 2's name is too long (at most 20 characters).",
        "Class 3's name may only use letters, digits, spaces, - and '.",
        "Class 4 needs a name."]


def test_teach_examples_button_and_removing_pictures():
    at = on_page("teach")
    button(at, "Try it with drawn examples (stripes, circles, checkerboards)").click().run()
    assert not at.exception
    assert [at.text_input(key=f"teach_name_{k}").value for k in range(3)] == list(teach.EXAMPLES)
    assert sum("**12 pictures**" == m.value for m in at.markdown) == 3
    first_remove = next(b for b in at.button if b.key and b.key.startswith("teach_rm_"))
    first_remove.click().run()
    assert sorted(m.value for m in at.markdown if m.value.endswith("pictures**")) == \
        ["**11 pictures**", "**12 pictures**", "**12 pictures**"]
    next(b for b in at.button if b.key == "teach_clear_2").click().run()
    assert any(m.value.startswith("**0 pictures**") for m in at.markdown)
    assert button(at, "Train").disabled


def test_teach_download_is_a_loadable_model(tiny_limits):
    at = on_page("teach")
    button(at, "Try it with drawn examples (stripes, circles, checkerboards)").click().run()
    button(at, "Train").click().run()
    job = train_until_done(at)
    data = training.model_bytes(job.model)
    m = M.load_model(data)
    assert m.classes == job.model.classes and m.meta["test_accuracy"] == job.model.meta["test_accuracy"]
    assert any(el.proto.label == "Download this network (.npz)" for el in at.get("download_button"))
