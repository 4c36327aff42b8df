"""What both training pages share: this session's one training job, its live view, the results,
and the way into the walkthrough with the trained network."""

from __future__ import annotations

import io
import math

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz import render
from cnnviz.data import Dataset
from cnnviz.jobs import ENDINGS, SLOTS, Busy, Limits, TrainingJob
from cnnviz.model import Model, forward, save_model
from cnnviz.teaching import Plan
from cnnviz.ui import describe as D
from cnnviz.ui import sidebar, state
from cnnviz.ui.common import show
from cnnviz.ui.pages import walkthrough_page

JOB_KEY = "training_job"
POLL_SECONDS = 1.0  # the live panel redraws (and beats the job's heartbeat) this often
RED, BLUE = (214, 96, 77), (33, 102, 172)


def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB_KEY)


def start_job(plan: Plan, limits: Limits, kind: str) -> str | None:
    """Start `plan` as this session's one training job; returns why it cannot start, or None."""
    job = current_job()
    if job is not None and job.running:
        return "Your network is still training. Stop it first: one training at a time for each student."
    new = TrainingJob(plan, limits, kind)
    try:
        new.start()
    except Busy:
        return (f"The class is busy: {SLOTS.size} networks are training on this computer right now. "
                "Try again in a moment.")
    st.session_state[JOB_KEY] = new
    return None


def forget_job() -> None:
    job = st.session_state.pop(JOB_KEY, None)
    if job is not None:
        job.stop()


def show_other_job(kind: str, message: str) -> bool:
    """If this session is training on the other page, say so, show that job live and return True."""
    job = current_job()
    if job is None or not job.running or job.kind == kind:
        return False
    st.info(message)
    live(job)
    return True


def live(job: TrainingJob) -> None:
    """While `job` trains: a panel that redraws itself every POLL_SECONDS, which also keeps the job alive."""
    st.fragment(run_every=POLL_SECONDS)(_live_panel)(job)


def _live_panel(job: TrainingJob) -> None:
    job.beat()
    if not job.running:
        st.rerun()  # the whole page draws the results
    st.button("Stop", on_click=job.stop, key="train_stop", type="primary",
              help="Stops within one step; the network keeps what it has learnt so far.")
    progress(job)


def progress(job: TrainingJob) -> None:
    """The progress bar, the loss and accuracy curves, and the first-layer filters then and now."""
    lim = job.limits
    text = (f"Step {job.step} of {job.steps} · {job.elapsed:.0f} s (at most {lim.max_seconds:.0f} s) · "
            f"{job.images_per_s:.0f} pictures a second")
    st.progress(min(1.0, job.step / max(1, job.steps)), text=text)
    points, tests = job.curves()
    xs = [p.step for p in points]
    loss_top = math.ceil(max([2.0] + [p.loss for p in points[:3] if np.isfinite(p.loss)]) / 0.4) * 0.4
    a, b, c = st.columns(3)
    with a:
        loss = [("loss on practice pictures", xs, [p.loss for p in points], RED)]
        show(render.curves(loss, job.steps, (0.0, loss_top), "Loss (lower is better)"),
             "How wrong it is on the pictures it practises on",
             D.describe_curves("Loss (lower is better)", loss, job.steps))
    with b:
        series = [("practice", xs, [p.accuracy for p in points], RED)]
        if tests:
            series.append(("test (never practised on)", [s for s, _ in tests], [v for _, v in tests], BLUE))
        show(render.curves(series, job.steps, (0.0, 1.0), "Accuracy (higher is better)", fmt="{:.0%}"),
             "Share of pictures it gets right", D.describe_curves("Accuracy (higher is better)", series, job.steps,
                                                                  "{:.0%}"))
    with c:
        _filters(job)


def _filters(job: TrainingJob) -> None:
    frozen = job.watch in job.plan.trainer.config.frozen
    size = 60 if len(job.filters) <= 8 else 40
    cols = min(4 if len(job.filters) <= 8 else 8, len(job.filters))
    for title, w in (("At the start", job.first_filters), (f"Now, after {job.step} steps", job.filters)):
        st.caption(f"{title}: the {len(w)} first-layer filters")
        show(render.mosaic([render.filter_picture(f, size).resize((size, size)) for f in w], cols=cols, pad=3),
             alt=D.describe_filter_mosaic(np.asarray(w), f"The first-layer filters {title[0].lower()}{title[1:]}"))
    if frozen:
        st.caption("These filters come from the shipped network and stay as they are (frozen): "
                   "only the later layers learn.")


def job_section(job: TrainingJob | None, kind: str, picture_name: str, file_name: str, details=None) -> None:
    """Under a training page's controls: this page's job (of `kind`) live while it runs, and its
    results once it has ended (see `finished`); nothing for no job or another page's job."""
    if job is None or job.kind != kind:
        return
    st.divider()
    if job.running:
        live(job)
    else:
        finished(job, picture_name, file_name, details=details)


def finished(job: TrainingJob, picture_name: str, file_name: str, details=None) -> None:
    """The results of an ended job: why it ended, its test accuracy, the curves, and what to do next.

    `picture_name` (with {cls} for the class) names the test picture the walkthrough opens with;
    `details(job)`, if given, draws more results under the accuracy.
    """
    why = ENDINGS.get(job.status, job.status)
    if job.model is None:  # diverged or failed; a failure's details are in the server's log, not on the page
        (st.warning if job.status == "diverged" else st.error)(why)
    else:
        st.success(f"**Done.** {why} {job.step} steps in {job.elapsed:.0f} s.")
    if job.test_accuracy is not None:
        n = len(job.plan.test)
        st.markdown(f"## It gets {job.test_accuracy:.0%} of {n} test pictures right\n"  # h2: under the page's title
                    "Test pictures are pictures it never practised on: the fair way to measure it.")
    if details is not None:
        details(job)
    progress(job)
    a, b, c = st.columns(3)
    if job.model is not None:
        if a.button("Walk through this network", type="primary", key=f"{job.kind}_walk", width="stretch"):
            picture, k = example(job.model, job.plan.test)
            walk(job.model, job.plan.label, picture, picture_name.format(cls=job.model.classes[k]))
        b.download_button("Download this network (.npz)", model_bytes(job.model), file_name=file_name,
                          mime="application/octet-stream", key=f"{job.kind}_download", on_click="ignore",
                          width="stretch")
    c.button("Train a new network", on_click=forget_job, key=f"{job.kind}_again", width="stretch")


def example(model: Model, data: Dataset | None) -> tuple[np.ndarray | None, int]:
    """A held-out picture the network gets right (else the first one) and its class; (None, 0) if none."""
    if data is None or not len(data):
        return None, 0
    right = np.flatnonzero(forward(model, model.normalize(data.images[:50])).argmax(1) == data.labels[:50])
    i = int(right[0]) if len(right) else 0
    return data.images[i], int(data.labels[i])


def model_bytes(model: Model) -> bytes:
    buf = io.BytesIO()
    save_model(model, buf)
    return buf.getvalue()


def walk(model: Model, label: str, picture: np.ndarray | None, picture_name: str) -> None:
    """Use `model` in the walkthrough (with `picture` in the sidebar, if given) and go there."""
    state.use_model(model, label)
    if picture is not None and state.accept_upload(render.png(Image.fromarray(picture)), picture_name) is None:
        sidebar.open_on_upload()
    st.switch_page(walkthrough_page())
