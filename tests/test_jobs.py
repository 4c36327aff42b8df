"""cnnviz.ui.jobs: background training that finishes, stops, times out, notices a closed tab, respects
the server's cap on trainings at once, and gives up cleanly when the numbers blow up."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnviz import teaching as T
from cnnviz.ui import jobs as J

FAST = J.Limits(max_steps=20, max_seconds=30, heartbeat_timeout=10, every=5, eval_every=10, eval_images=50)


@pytest.fixture(scope="module")
def data():
    return T.teaching_dataset(per_class=20, seed=0), T.teaching_dataset(per_class=10, seed=1)


def plan(data, steps=20, lr=0.05, channels=(4, 4, 8, 8)):
    train, test = data
    return T.live_plan(train, test, T.LiveConfig(lr=lr, epochs=100, batch_size=20, channels=channels), steps, "toy")


def wait(job, beat=True, timeout=30.0):
    """Poll like the page does (beating the heartbeat unless told not to) until the job ends."""
    end = time.monotonic() + timeout
    while job.running and time.monotonic() < end:
        if beat:
            job.beat()
        time.sleep(0.05)
    assert not job.running, "the job did not end in time"
    return job


def test_a_job_trains_to_the_end_and_publishes_its_progress(data):
    pool = J.JobPool(2)
    job = J.TrainingJob(plan(data), FAST, pool=pool)
    w0 = job.first_filters.copy()
    job.start()
    assert job.running and pool.running == 1
    wait(job)
    assert job.status == "finished" and job.step == job.steps == 20 and pool.running == 0
    points, tests = job.curves()
    assert [p.step for p in points] == [5, 10, 15, 20]
    assert all(np.isfinite(p.loss) and 0 <= p.accuracy <= 1 for p in points)
    assert [s for s, _ in tests] == [0, 10, 20]
    assert job.filters.shape == w0.shape and not np.array_equal(job.filters, w0)
    np.testing.assert_array_equal(job.first_filters, w0)
    assert job.model is not None and job.model.meta["steps"] == 20 and job.model.meta["ended"] == "finished"
    assert job.test_accuracy == job.model.meta["test_accuracy"]
    assert job.model.meta["test_images"] == 50 and job.elapsed > 0


def test_stop_ends_the_job_within_a_step_and_keeps_the_network(data):
    job = J.TrainingJob(plan(data, steps=5000), J.Limits(max_steps=5000, every=5), pool=J.JobPool(1))
    job.start()
    while job.step < 5:
        job.beat()
        time.sleep(0.02)
    job.stop()
    t = time.monotonic()
    wait(job)
    assert time.monotonic() - t < 5.0  # a step and the final measurement, on a busy machine
    assert job.status == "stopped" and 5 <= job.step < 5000 and job.model is not None
    assert job.model.meta["ended"] == "stopped"


def test_a_job_nobody_watches_stops_itself(data):
    """A closed tab stops polling; the job notices the missing heartbeat and ends."""
    lim = J.Limits(max_steps=5000, heartbeat_timeout=0.5, every=2)
    job = J.TrainingJob(plan(data, steps=5000), lim, pool=J.JobPool(1))
    job.start()
    t = time.monotonic()
    wait(job, beat=False, timeout=10)
    assert job.status == "abandoned" and time.monotonic() - t < 5.0
    assert J.ENDINGS["abandoned"].startswith("The page stopped")


def test_the_time_cap_ends_a_job(data):
    job = J.TrainingJob(plan(data, steps=5000), J.Limits(max_steps=5000, max_seconds=0.5, every=2),
                        pool=J.JobPool(1))
    job.start()
    wait(job)
    assert job.status == "time" and job.step < 5000 and job.elapsed < 5.0


def test_the_step_cap_bounds_a_longer_plan(data):
    job = J.TrainingJob(plan(data, steps=40), J.Limits(max_steps=10, every=5), pool=J.JobPool(1))
    assert job.steps == 10
    job.start()
    wait(job)
    assert job.status == "finished" and job.step == 10


def test_the_server_trains_at_most_pool_size_jobs_at_once(data):
    pool = J.JobPool(1)
    lim = J.Limits(max_steps=5000, every=2)
    first = J.TrainingJob(plan(data, steps=5000), lim, pool=pool)
    second = J.TrainingJob(plan(data, steps=10), lim, pool=pool)
    first.start()
    with pytest.raises(J.Busy):
        second.start()
    assert not second.running and second.status == "new"
    first.stop()
    wait(first)
    assert pool.running == 0
    second.start()  # a free slot again
    wait(second)
    assert second.status == "finished"
    with pytest.raises(RuntimeError):
        second.start()  # a job runs once


def test_a_blown_up_network_is_not_offered(data):
    job = J.TrainingJob(plan(data, steps=60, lr=1e6), J.Limits(max_steps=60, every=2), pool=J.JobPool(1))
    job.start()
    wait(job)
    assert job.status == "diverged" and job.model is None


def test_a_failure_ends_only_the_job(data):
    p = plan(data)
    p.train = None  # nothing to train on
    pool = J.JobPool(1)
    job = J.TrainingJob(p, FAST, pool=pool)
    job.start()
    wait(job)
    assert job.status == "failed" and "Error" in job.error and pool.running == 0


def test_training_uses_one_blas_thread_and_gives_the_setting_back(data):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    seen = []
    job = J.TrainingJob(plan(data, steps=5000), J.Limits(max_steps=5000, every=2), pool=J.JobPool(1))
    job.start()
    while job.step < 4:
        job.beat()
        time.sleep(0.02)
    seen = blas_threads()
    job.stop()
    wait(job)
    assert seen == {1}
    assert blas_threads() == before
