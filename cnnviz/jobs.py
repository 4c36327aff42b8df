"""Training jobs that run beside a session: one thread each, bounded, stoppable, and never left behind.

A `TrainingJob` trains a `teaching.Plan` in a background thread, in chunks of a few steps, and
publishes what the page draws (the step, loss and accuracy points, a copy of the first-layer
filters). The thread never touches Streamlit; the page polls the job and calls `beat()`.

Limits, so that one student cannot starve the class:
- every job stops at `Limits.max_steps` steps or `Limits.max_seconds` of training;
- `SLOTS`, a bounded semaphore, lets at most `MAX_JOBS` jobs train at once on the whole server;
- one job per session is the page's rule (cnnviz.ui.training);
- the app runs NumPy's BLAS with one thread per call (`one_blas_thread_per_call`), so two jobs on
  two cores do not fight over a pool of BLAS threads.

Closed tabs: Streamlit 1.67 has no hook for the end of a session (it even keeps a disconnected
session's state for `server.disconnectedSessionTTL`, 120 s, in case the tab reconnects). So the
page's polling fragment calls `beat()` about once a second, and a job that hears no beat for
`Limits.heartbeat_timeout` seconds stops itself: a closed tab, or a page left mid-training,
ends its training within about ten seconds.

Time is injected, so tests never wait for it: a job reads the time only from its `clock` (a
`ManualClock` in tests), and before every training step it passes its `gate`, if it has one
(`StepGate` in tests), which can hold the thread at a chosen step while the test looks at the job
or moves the clock.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from cnnviz.teaching import Plan, subset
from cnnviz.train import Progress, evaluate, train_steps

MAX_JOBS = 2  # jobs training at once on the whole server: the machine has 2 cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Bounds on one training job (all in one place, so a teacher can see and change them)."""

    max_steps: int = 900
    max_seconds: float = 60.0  # clock time of the training itself
    heartbeat_timeout: float = 10.0  # stop when the page has not polled for this long
    every: int = 10  # steps between curve points and filter snapshots
    eval_every: int = 50  # steps between measurements on the held-out pictures
    eval_images: int = 300  # held-out pictures used for those measurements (all of them at the end)


LEARN_LIMITS = Limits()
TEACH_LIMITS = Limits(max_steps=400, max_seconds=45.0, eval_every=10)

# Why a job ended, in words for the page.
ENDINGS = {
    "finished": "It finished all its steps.",
    "stopped": "You stopped it.",
    "time": "It reached the time limit for one training.",
    "abandoned": "The page stopped asking about it (the tab was closed or left), so it stopped.",
    "diverged": "The numbers blew up (the loss became infinite): the learning rate was too big. "
                "Try a smaller one.",
    "failed": "Something went wrong while training, so it stopped. Try again; if it happens again, "
              "tell your teacher.",
}


class Busy(RuntimeError):
    """Every training slot of the server is taken."""


class JobSlots(threading.BoundedSemaphore):
    """At most `size` jobs train at once, across every session of the server.

    A job takes a slot with `acquire(blocking=False)` and gives it back with `release()`;
    `taken` says how many are in use.
    """

    def __init__(self, size: int = MAX_JOBS):
        super().__init__(size)
        self.size = size

    @property
    def taken(self) -> int:
        return self.size - self._value  # the semaphore's own count of free slots


SLOTS = JobSlots()


def _limit_blas(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


@functools.cache  # once per process; the cache also keeps the limiter alive
def one_blas_thread_per_call():
    """Limit NumPy's BLAS to one thread in this process (later calls do nothing).

    The app multiplies small matrices (32x32 pictures, at most 32 maps) for many sessions at once:
    a pool of BLAS threads per call only adds hand-over time and fights the other sessions, the
    training jobs and the browser for the cores. Measured in benchmarks/forward_speed.py: one
    thread runs the traced forward pass several times faster than two on this loaded 2-core
    machine. Needs threadpoolctl; without it everything works, only slower on a busy machine.
    """
    return _limit_blas(1)


class ManualClock:
    """A clock that moves only when told to: `clock()` reads it, `advance(seconds)` moves it on.

    Give it to a `TrainingJob` (as `clock`) to test its heartbeat and time limit without waiting.
    """

    def __init__(self, start: float = 0.0):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class StepGate:
    """Holds a job's thread at a chosen step, so a test can look at the job (or move its clock)
    while it is certainly running, then let it go on.

    The thread calls `wait(step)` before every training step (`step` = steps done so far) and
    waits there while `step >= ` the allowed count: `StepGate()` holds it before its first step,
    `allow(k)` lets it train until k steps are done, `open()` lets it run to its end. `held()`
    waits until the thread is held and returns its step.
    """

    def __init__(self, allow: float = 0):
        self._changed = threading.Condition()
        self._allowed = allow
        self._held_at: int | None = None

    def wait(self, step: int) -> None:
        with self._changed:
            while step >= self._allowed:
                self._held_at = step
                self._changed.notify_all()
                self._changed.wait()
            self._held_at = None

    def allow(self, steps: float) -> None:
        with self._changed:
            self._allowed = steps
            self._held_at = None  # the thread says again where it holds, once it has looked
            self._changed.notify_all()

    def open(self) -> None:
        self.allow(math.inf)

    def held(self, timeout: float = 300.0) -> int:
        """Wait until the thread is held at the gate; its step. TimeoutError if it never gets there."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._held_at is not None, timeout):
                raise TimeoutError(f"the job did not reach its gate (allowed {self._allowed} steps) "
                                   f"within {timeout:.0f} s")
            return self._held_at


def _finite(params: dict) -> bool:
    return all(np.all(np.isfinite(a)) for p in params.values() for a in p.values())


@dataclass
class Point:
    """One point of the curves: the mean loss and accuracy of the last few steps' batches."""

    step: int
    loss: float
    accuracy: float


class TrainingJob:
    """One training run in a background thread. Read its fields from any thread; they only grow.

    `kind` says which page started it ("learn" or "teach"); `watch` is the layer whose filters
    are copied for the page every `limits.every` steps. `clock()` gives the time in seconds
    (heartbeat, time limit, elapsed); `gate`, if given, is passed before every step
    (`gate.wait(steps_done)`; see `StepGate`).
    """

    def __init__(self, plan: Plan, limits: Limits = LEARN_LIMITS, kind: str = "learn",
                 slots: threading.Semaphore = SLOTS, clock=time.monotonic, gate=None, watch: str = "conv1_1"):
        self.plan, self.limits, self.kind, self.slots = plan, limits, kind, slots
        self.clock, self.gate, self.watch = clock, gate, watch
        self.steps = min(plan.steps, limits.max_steps)
        self.status = "new"  # new, running, then a key of ENDINGS
        self.error: Exception | None = None  # what made it fail: for the server's log and tests, not the page
        self.step = 0
        self.points: list[Point] = []
        self.tests: list[tuple[int, float]] = []  # (step, accuracy on held-out pictures)
        self.first_filters = np.array(plan.trainer.params[watch]["weight"])  # (F, C, 3, 3)
        self.filters = self.first_filters
        self.images_per_s = 0.0
        self.started = self.ended = None
        self.last_seen = clock()
        self.model = None  # the trained Model, once the job has ended (None if it diverged or failed)
        self.test_accuracy = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    # -- control, from the page
    def start(self) -> None:
        """Start training in the background; raises Busy when the server's training slots are full."""
        if self._thread is not None:
            raise RuntimeError("a job runs only once")
        if not self.slots.acquire(blocking=False):
            raise Busy("every training slot of the server is taken")
        self.started = self.last_seen = self.clock()
        self.status = "running"
        self._thread = threading.Thread(target=self._run, name=f"cnnviz-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop; it does before its next training step."""
        self._stop.set()

    def beat(self) -> None:
        """The page is still watching: keep going."""
        self.last_seen = self.clock()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self.status in ("new", "running") and self._thread is not None

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def curves(self) -> tuple[list[Point], list[tuple[int, float]]]:
        """Consistent copies of the training points and the held-out measurements."""
        with self._lock:
            return list(self.points), list(self.tests)

    # -- the thread
    def _reason_to_stop(self) -> str | None:
        """Before each step: pass the gate, then a key of ENDINGS if the job must end now, else None."""
        if self.gate is not None:
            self.gate.wait(self.plan.trainer.step)
        if self._stop.is_set():
            return "stopped"
        now = self.clock()
        if now - self.last_seen > self.limits.heartbeat_timeout:
            return "abandoned"
        if now - self.started > self.limits.max_seconds:
            return "time"
        return None

    def _run(self) -> None:
        ending = "failed"
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # blow-ups are caught below
                ending = self._train()
                if not _finite(self.plan.trainer.params):
                    ending = "diverged"
                if ending != "diverged":
                    self._finish_model(ending)
        except Exception as e:  # a failure ends this job only, never the server; the page says so plainly
            ending, self.error = "failed", e
            log.exception("a %s training job failed at step %d", self.kind, self.plan.trainer.step)
        finally:
            self.ended = self.clock()
            self.slots.release()  # before the status, so a job seen ended has given its slot back
            self.status = ending

    def _train(self) -> str:
        plan, limits, trainer = self.plan, self.limits, self.plan.trainer
        probe = subset(plan.test, limits.eval_images) if plan.test is not None and len(plan.test) else None
        heard: list[Progress] = []
        if probe is not None:  # where the accuracy curve starts: about chance
            self.tests.append((0, evaluate(trainer.model(), probe)))
        while True:
            reason = self._reason_to_stop()
            if reason or trainer.step >= self.steps:
                return reason or "finished"
            heard.clear()
            done = train_steps(trainer, plan.train, min(limits.every, self.steps - trainer.step), heard.append,
                               lambda: self._reason_to_stop() is not None)
            if done == 0:  # a stop arrived before the chunk's first step, or the schedule has ended
                return self._reason_to_stop() or "finished"
            last = heard[-1]
            if not np.isfinite(last.loss):
                return "diverged"
            test = None
            if probe is not None and (trainer.step % limits.eval_every < done or trainer.step >= self.steps):
                test = evaluate(trainer.model(), probe)
            with self._lock:
                self.step = trainer.step
                self.points.append(Point(trainer.step, float(last.loss), float(last.accuracy)))
                if test is not None:
                    self.tests.append((trainer.step, test))
                self.filters = np.array(trainer.params[self.watch]["weight"])
                self.images_per_s = last.images_per_s

    def _finish_model(self, ending: str) -> None:
        plan, trainer = self.plan, self.plan.trainer
        model = trainer.model()
        accuracy = evaluate(model, plan.test) if plan.test is not None and len(plan.test) else None
        epochs = round(trainer.step * trainer.config.batch_size / max(1, len(plan.train)), 2)
        meta = {**plan.meta, "steps": trainer.step, "epochs": epochs,
                "train_seconds": round(self.clock() - self.started, 1), "ended": ending,
                "date": datetime.date.today().isoformat()}
        if accuracy is not None:
            meta["test_accuracy"] = round(accuracy, 4)
        self.model, self.test_accuracy = replace(model, meta={**model.meta, **meta}), accuracy
