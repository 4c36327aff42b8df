"""cnnviz.jobs.TrainingQueue: fair turns for a class. First come, first served; one job per client;
a cooldown while others wait; places and estimated waits; a closed tab leaves the line; and the
next job starts when one ends, without its page polling.

As in tests/test_jobs.py, nothing here waits for time to pass: the queue and its jobs read one
`ManualClock`, each job waits at its own `StepGate` until the test lets it go, and the test waits
only for events (a thread reaching its gate, a thread ending).
"""

from __future__ import annotations

import threading

import pytest

from cnnviz import jobs as J
from cnnviz import teaching as T

LIMITS = J.Limits(max_steps=20, max_seconds=30, heartbeat_timeout=10, every=5, eval_every=10, eval_images=20)
HANG = 300.0  # seconds: only so that a hung job fails its test with a message instead of hanging the run


@pytest.fixture(scope="module")
def data():
    return T.teaching_dataset(per_class=8, seed=0), T.teaching_dataset(per_class=4, seed=1)


def tiny_plan(data, steps=20):
    train, test = data
    return T.live_plan(train, test, T.LiveConfig(lr=0.05, epochs=100, batch_size=8, channels=(2, 2, 4, 4)),
                       steps, "toy")


class Line:
    """A queue on a manual clock, with helpers to ask for jobs; every job is let go and waited for
    after the test, so no thread outlives it."""

    def __init__(self, data, slots=1, cooldown=60.0, max_waiting=200):
        self.data = data
        self.clock = J.ManualClock()
        self.queue = J.TrainingQueue(J.JobSlots(slots), self.clock, cooldown=cooldown, max_waiting=max_waiting)
        self.made: list[J.TrainingJob] = []

    def ask(self, client: str, steps: int = 20, gate: J.StepGate | None = None, plan=None) -> J.TrainingJob:
        job = self.queue.job(plan or tiny_plan(self.data, steps), LIMITS, gate=J.StepGate() if gate is None else gate)
        self.made.append(job)
        return self.queue.submit(client, job)

    def close(self) -> None:
        for job in self.made:
            job.stop()
        self.queue.pump()  # the waiting ones leave the line, so none starts late
        for job in self.made:
            job.gate.open()
        for job in self.made:
            assert job.join(HANG), f"a job hangs: {job.status} at step {job.step}"


@pytest.fixture
def line(data):
    made = []

    def new(**kw) -> Line:
        made.append(Line(data, **kw))
        return made[-1]

    yield new
    for ln in made:
        ln.close()


def ended(job: J.TrainingJob) -> J.TrainingJob:
    assert job.join(HANG), f"the job hangs: still {job.status} at step {job.step} after {HANG:.0f} s"
    return job


def places(queue: J.TrainingQueue, jobs) -> list:
    return [None if (t := queue.turn(j)) is None else t.place for j in jobs]


def test_first_come_first_served_and_the_next_starts_when_one_ends_without_polling(line):
    ln = line(slots=1)
    a, b, c = ln.ask("a"), ln.ask("b"), ln.ask("c")
    assert a.gate.held() == 0 and a.running and not a.waiting
    assert b.waiting and c.waiting and not b.running
    assert places(ln.queue, [a, b, c]) == [None, 1, 2]
    assert (ln.queue.running, ln.queue.waiting) == (1, 2)
    a.gate.open()
    ended(a)  # nobody polls: the ending job's own thread starts the next
    assert a.status == "finished"
    assert b.running and b.gate.held() == 0 and places(ln.queue, [b, c]) == [None, 1]
    b.stop()
    b.gate.open()
    ended(b)
    assert b.status == "stopped" and c.running and c.gate.held() == 0
    assert ln.queue.waiting == 0


@pytest.mark.parametrize("ending", ["finished", "stopped", "time", "abandoned", "failed", "diverged"])
def test_any_ending_hands_the_slot_to_the_next(line, data, ending):
    ln = line(slots=1)
    plan = tiny_plan(data)
    if ending == "failed":
        plan.train = None  # nothing to train on
    if ending == "diverged":
        plan = T.live_plan(*data, T.LiveConfig(lr=1e6, epochs=100, batch_size=8, channels=(2, 2, 4, 4)), 20, "toy")
    first = ln.ask("first", plan=plan, gate=J.StepGate(allow=2))
    second = ln.ask("second")
    if ending != "failed":  # a failing job fails at its first step, before the gate can hold it
        assert first.gate.held() == 2
    if ending == "stopped":
        first.stop()
    elif ending == "time":
        ln.clock.advance(LIMITS.max_seconds + 1)
        first.beat()
        second.beat()
    elif ending == "abandoned":
        ln.clock.advance(LIMITS.heartbeat_timeout + 1)
        second.beat()  # the waiting page still watches; the training page has gone
    first.gate.open()
    ended(first)
    assert first.status == ending
    assert second.running and second.gate.held() == 0  # started by the end itself, with no poll


def test_one_job_per_client_waiting_or_training(line):
    ln = line(slots=1)
    mine = ln.ask("10.0.0.7")
    with pytest.raises(J.AlreadyQueued) as info:
        ln.ask("10.0.0.7")  # a second tab, or a second scripted session, from the same client
    assert "One training at a time" in str(info.value)
    other = ln.ask("10.0.0.8")
    assert other.waiting
    with pytest.raises(J.AlreadyQueued):
        ln.ask("10.0.0.8")  # waiting counts too
    assert ln.queue.waiting == 1 and len([j for j in ln.made if j.status == "new"]) == 2  # refused ones never ran
    assert mine.running


def test_a_cooldown_while_others_wait_and_none_in_a_quiet_class(line):
    ln = line(slots=1, cooldown=60)
    a = ln.ask("a")
    b = ln.ask("b")
    a.gate.open()
    ended(a)
    assert b.running  # the class is busy: b trains
    with pytest.raises(J.TooSoon) as info:
        ln.ask("a")
    assert info.value.seconds == 60 and "60 s" in str(info.value)
    ln.clock.advance(45)
    b.beat()
    with pytest.raises(J.TooSoon) as info:
        ln.ask("a")
    assert info.value.seconds == 15
    c = ln.ask("c")  # others are not held up by a's cooldown
    ln.clock.advance(15)
    b.beat()
    c.beat()
    again = ln.ask("a")
    assert again.waiting and places(ln.queue, [c, again]) == [1, 2]  # back of the line
    # a quiet class: nothing waits and a slot is free, so a restart takes nobody's turn
    b.gate.open()
    ended(b)
    c.gate.open()
    ended(c)
    again.gate.open()
    ended(again)
    assert ln.queue.waiting == ln.queue.running == 0 and ln.queue.cooldown_left("a") == 60
    assert ln.ask("a").running


def test_places_and_estimated_waits(line):
    ln = line(slots=2)
    r1, r2 = ln.ask("r1", gate=J.StepGate()), ln.ask("r2", gate=J.StepGate())
    w1, w2, w3 = ln.ask("w1"), ln.ask("w2"), ln.ask("w3")
    assert r1.gate.held() == 0 and r2.gate.held() == 0
    turns = [ln.queue.turn(j) for j in (w1, w2, w3)]
    assert [t.place for t in turns] == [1, 2, 3] and {t.waiting for t in turns} == {3}
    # Nothing measured yet: every job is taken to last its cap (30 s); two slots.
    assert [t.wait for t in turns] == [30, 30, 60]
    # Ten seconds on, both running jobs are half-way (10 of 20 steps): 10 s each to go.
    ln.clock.advance(10)
    for j in (r1, r2, w1, w2, w3):
        j.beat()
    r1.gate.allow(10)
    r2.gate.allow(10)
    assert r1.gate.held() == 10 and r2.gate.held() == 10
    assert [ln.queue.turn(j).wait for j in (w1, w2, w3)] == [10, 10, 40]
    # At 12 s, r2 has done 15 steps and r1 ends: 12 s becomes the typical length of a job.
    ln.clock.advance(2)
    for j in (r2, w1, w2, w3):
        j.beat()
    r2.gate.allow(15)
    assert r2.gate.held() == 15
    r1.gate.open()
    ended(r1)
    assert w1.running and places(ln.queue, [w2, w3]) == [1, 2]
    r2_left = 12 * (20 - 15) / 15  # 12 s for 15 steps: 4 s for the last 5
    w1_left = 12.0  # just started: a typical job
    assert ln.queue.turn(w2).wait == pytest.approx(r2_left)  # w2 takes r2's slot
    assert ln.queue.turn(w3).wait == pytest.approx(w1_left)  # w3 takes w1's, sooner than r2's + 12 s


def test_a_closed_tab_leaves_the_line_and_frees_its_place(line):
    ln = line(slots=1)
    a, b, c = ln.ask("a"), ln.ask("b"), ln.ask("c")
    assert a.gate.held() == 0
    ln.clock.advance(LIMITS.heartbeat_timeout + 1)
    a.beat()  # a's page and c's page poll; b's tab was closed
    turn = ln.queue.poll(c)
    assert turn.place == 1 and turn.waiting == 1
    assert b.status == "abandoned" and not b.waiting and not b.running and b.started is None
    assert b.status in J.ENDINGS
    again = ln.ask("b")  # b may queue again, at the back
    assert places(ln.queue, [c, again]) == [1, 2]


def test_a_stale_head_is_skipped_when_a_slot_frees(line):
    ln = line(slots=1)
    a, b, c = ln.ask("a"), ln.ask("b"), ln.ask("c")
    assert a.gate.held() == 0
    ln.clock.advance(LIMITS.heartbeat_timeout + 1)
    a.beat()
    c.beat()  # the page beats, but nobody pumps the line until a ends
    assert places(ln.queue, [b, c]) == [1, 2]
    a.gate.open()
    ended(a)
    assert b.status == "abandoned" and c.running and c.gate.held() == 0


def test_leaving_the_line(line):
    ln = line(slots=1)
    a, b, c, d = ln.ask("a"), ln.ask("b"), ln.ask("c"), ln.ask("d")
    ln.queue.leave(b)
    assert b.status == "stopped" and places(ln.queue, [c, d]) == [1, 2]
    c.stop()  # what the page's Stop button does: the job leaves at the next pump
    assert ln.queue.poll(d).place == 1 and c.status == "stopped"
    a.gate.open()
    ended(a)
    assert d.running


def test_a_full_line_refuses_politely(line):
    ln = line(slots=1, max_waiting=2)
    ln.ask("a")
    ln.ask("b")
    ln.ask("c")
    with pytest.raises(J.QueueFull) as info:
        ln.ask("d")
    assert str(info.value)[0].isupper() and "Try again" in str(info.value)
    assert isinstance(info.value, J.Refused)


def test_submit_takes_only_new_jobs_of_its_own_slots_and_clock(line, data):
    ln = line(slots=1)
    stranger = J.TrainingJob(tiny_plan(data), LIMITS, slots=J.JobSlots(1), clock=ln.clock)
    with pytest.raises(ValueError):
        ln.queue.submit("x", stranger)
    other_clock = J.TrainingJob(tiny_plan(data), LIMITS, slots=ln.queue.slots, clock=J.ManualClock())
    with pytest.raises(ValueError):
        ln.queue.submit("x", other_clock)
    job = ln.ask("x")
    with pytest.raises(ValueError):
        ln.queue.submit("y", job)  # already submitted
    assert ln.queue.waiting == 0 and ln.queue.running == 1


def test_sixty_clients_asking_at_once_each_get_a_place_and_train_in_that_order(line):
    ln = line(slots=2)
    n = 60
    plans = [tiny_plan(ln.data, steps=2) for _ in range(n)]
    jobs = [ln.queue.job(p, LIMITS, gate=J.StepGate()) for p in plans]
    ln.made.extend(jobs)
    start = threading.Barrier(n)
    errors = []

    def ask(k):
        start.wait()
        try:
            ln.queue.submit(f"student-{k}", jobs[k])
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    assert not errors
    running = [j for j in jobs if j.running]
    waiting = [j for j in jobs if j.waiting]
    assert len(running) == 2 and len(waiting) == n - 2
    order = sorted(waiting, key=lambda j: ln.queue.turn(j).place)
    assert [ln.queue.turn(j).place for j in order] == list(range(1, n - 1))
    assert [ln.queue.turn(j).wait for j in order] == [30 * (k // 2 + 1) for k in range(n - 2)]  # two at a time
    # Now let the jobs end one at a time, oldest first: each end starts exactly the next in line.
    expected_running = list(running)
    for k in range(n):
        oldest = expected_running.pop(0)
        assert oldest.gate.held() == 0
        oldest.gate.open()
        ended(oldest)
        assert oldest.status == "finished"
        if k < n - 2:
            nxt = order[k]
            assert nxt.running and not nxt.waiting
            expected_running.append(nxt)
        assert sorted(map(id, (j for j in jobs if j.running))) == sorted(map(id, expected_running))
        for j in jobs:
            j.beat()  # every page is still open
    assert all(j.status == "finished" for j in jobs) and ln.queue.waiting == ln.queue.running == 0
