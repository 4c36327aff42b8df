"""cnnviz.jobs: background training that finishes, stops, times out, notices a closed tab, respects
the server's cap on trainings at once, and gives up cleanly when the numbers blow up.

No test here waits for time to pass: every job reads a `ManualClock` that moves only when the test
says so, and a `StepGate` holds the thread at the step the test chooses while it looks at the job.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz import jobs as J
from cnnviz import teaching as T

FAST = J.Limits(max_steps=20, max_seconds=30, heartbeat_timeout=10, every=5, eval_every=10, eval_images=50)
LONG = J.Limits(max_steps=5000, max_seconds=30, heartbeat_timeout=10, every=2)
HANG = 300.0  # seconds: only so that a hung job fails its test with a message instead of hanging the run


@pytest.fixture(scope="module")
def data():
    return T.teaching_dataset(per_class=20, seed=0), T.teaching_dataset(per_class=10, seed=1)


def plan(data, steps=20, lr=0.05, channels=(4, 4, 8, 8)):
    train, test = data
    return T.live_plan(train, test, T.LiveConfig(lr=lr, epochs=100, batch_size=20, channels=channels), steps, "toy")


@pytest.fixture
def new_job(data):
    """Make jobs on a manual clock (and their own slot, unless given); after the test every one is
    stopped, let through its gate and waited for, so no thread outlives its test."""
    made = []

    def new(steps=20, limits=FAST, lr=0.05, gate=None, slots=None, train_plan=None):
        job = J.TrainingJob(train_plan or plan(data, steps, lr), limits, slots=slots or J.JobSlots(1),
                            clock=J.ManualClock(), gate=gate)
        made.append(job)
        return job

    yield new
    for job in made:
        job.stop()
        if job.gate is not None:
            job.gate.open()
        job.join(HANG)


def ended(job: J.TrainingJob) -> J.TrainingJob:
    """Wait for the job's thread to end (an event); fail clearly if it hangs."""
    assert job.join(HANG), f"the job hangs: still {job.status} at step {job.step} after {HANG:.0f} s"
    return job


def test_a_job_trains_to_the_end_and_publishes_its_progress(new_job):
    slots, gate = J.JobSlots(2), J.StepGate()
    job = new_job(gate=gate, slots=slots)
    w0 = job.first_filters.copy()
    job.start()
    assert gate.held() == 0  # before its first step
    assert job.running and job.status == "running" and slots.taken == 1
    points, tests = job.curves()
    assert job.step == 0 and points == [] and [s for s, _ in tests] == [0]  # the curve starts at chance
    gate.allow(5)
    assert gate.held() == 5  # one chunk (limits.every) done and published
    points, _ = job.curves()
    assert job.step == 5 and [p.step for p in points] == [5] and not np.array_equal(job.filters, w0)
    job.clock.advance(3.0)
    gate.open()
    ended(job)
    assert job.status == "finished" and job.step == job.steps == 20 and slots.taken == 0
    points, tests = job.curves()
    assert [p.step for p in points] == [5, 10, 15, 20]
    assert all(np.isfinite(p.loss) and 0 <= p.accuracy <= 1 for p in points)
    assert [s for s, _ in tests] == [0, 10, 20]
    assert job.filters.shape == w0.shape and not np.array_equal(job.filters, w0)
    np.testing.assert_array_equal(job.first_filters, w0)
    assert job.model is not None and job.model.meta["steps"] == 20 and job.model.meta["ended"] == "finished"
    assert job.test_accuracy == job.model.meta["test_accuracy"]
    assert job.model.meta["test_images"] == 50
    assert job.elapsed == 3.0 and job.model.meta["train_seconds"] == 3.0  # the job's clock, not the wall's


def test_stop_ends_the_job_before_its_next_step_and_keeps_the_network(new_job):
    gate = J.StepGate(allow=7)
    job = new_job(steps=5000, limits=J.Limits(max_steps=5000, every=5), gate=gate)
    job.start()
    assert gate.held() == 7  # in the middle of a chunk of 5
    job.stop()
    gate.open()
    ended(job)
    assert job.status == "stopped" and job.step == 7  # step 8 never ran
    assert job.model is not None and job.model.meta["ended"] == "stopped" and job.model.meta["steps"] == 7


def test_the_heartbeat_keeps_a_job_alive_and_a_job_nobody_watches_stops_itself(new_job):
    """A closed tab stops polling; the job notices the missing heartbeat and ends."""
    gate = J.StepGate()
    job = new_job(steps=5000, limits=LONG, gate=gate)
    job.start()
    assert gate.held() == 0
    for k in range(1, 4):  # a watching page: 18 s of beats 6 s apart, longer than the 10 s timeout
        job.clock.advance(6.0)
        job.beat()
        gate.allow(2 * k)
        assert gate.held() == 2 * k and job.running
    job.clock.advance(LONG.heartbeat_timeout + 0.5)  # then nobody polls any more
    gate.open()
    ended(job)
    assert job.status == "abandoned" and job.step == 6
    assert job.model is not None  # what it learnt is kept, should the student come back
    assert J.ENDINGS["abandoned"].startswith("The page stopped")


def test_the_time_cap_ends_a_job(new_job):
    gate = J.StepGate(allow=2)
    job = new_job(steps=5000, limits=LONG, gate=gate)
    job.start()
    assert gate.held() == 2
    job.clock.advance(LONG.max_seconds + 1)
    job.beat()  # the page is still watching: only the time limit ends it
    gate.open()
    ended(job)
    assert job.status == "time" and job.step == 2 and job.elapsed == LONG.max_seconds + 1


def test_the_step_cap_bounds_a_longer_plan(new_job):
    job = new_job(steps=40, limits=J.Limits(max_steps=10, every=5))
    assert job.steps == 10
    job.start()
    ended(job)
    assert job.status == "finished" and job.step == 10


def test_the_server_trains_at_most_its_slots_at_once(new_job):
    slots, gate = J.JobSlots(1), J.StepGate()
    first = new_job(steps=5000, limits=LONG, gate=gate, slots=slots)
    second = new_job(steps=10, limits=LONG, slots=slots)
    first.start()
    assert gate.held() == 0 and slots.taken == 1
    with pytest.raises(J.Busy):
        second.start()
    assert not second.running and second.status == "new" and slots.taken == 1
    first.stop()
    gate.open()
    ended(first)
    assert first.status == "stopped" and slots.taken == 0
    second.start()  # a free slot again
    ended(second)
    assert second.status == "finished" and slots.taken == 0
    with pytest.raises(RuntimeError):
        second.start()  # a job runs once
    with pytest.raises(ValueError):
        slots.release()  # a bounded semaphore: a slot cannot be given back twice


def test_a_blown_up_network_is_not_offered(new_job):
    job = new_job(steps=60, lr=1e6, limits=J.Limits(max_steps=60, every=2))
    job.start()
    ended(job)
    assert job.status == "diverged" and job.model is None


def test_a_failure_ends_only_the_job_and_its_details_go_to_the_log(new_job, data, caplog):
    broken = plan(data)
    broken.train = None  # nothing to train on
    slots = J.JobSlots(1)
    job = new_job(train_plan=broken, slots=slots)
    job.start()
    ended(job)
    assert job.status == "failed" and job.model is None and slots.taken == 0
    assert isinstance(job.error, TypeError)
    logged = [r for r in caplog.records if r.name == "cnnviz.jobs" and r.exc_info]
    assert logged and logged[0].exc_info[1] is job.error  # the traceback is in the server's log
    assert type(job.error).__name__ not in J.ENDINGS["failed"]  # the page's words say nothing of it


def test_the_gate_says_when_nothing_reaches_it():
    with pytest.raises(TimeoutError, match="did not reach its gate"):
        J.StepGate().held(timeout=0)


def test_the_manual_clock_moves_only_when_told():
    clock = J.ManualClock(5.0)
    assert clock() == clock() == 5.0
    clock.advance(2.5)
    assert clock() == 7.5


def test_the_app_runs_blas_with_one_thread_per_call():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    J.one_blas_thread_per_call()
    J.one_blas_thread_per_call()  # a second session's first run: nothing more happens
    threads = {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}
    assert threads == {1}
    assert J.one_blas_thread_per_call.cache_info().misses == 1

