"""Training jobs that run beside a session: one thread each, bounded, stoppable, and never left behind.

A `TrainingJob` trains a `teaching.Plan` in a background thread, in chunks of a few steps, and
publishes what the page draws (the step, loss and accuracy points, a copy of the first-layer
filters). The thread never touches Streamlit; the page polls the job and calls `beat()`.

Limits, so that one student cannot starve the class:
- every job stops at `Limits.max_steps` steps or `Limits.max_seconds` of training;
- a `JobPool` lets at most `MAX_JOBS` jobs train at once on the whole server;
- one job per session is the page's rule (cnnviz.ui.training);
- NumPy's BLAS uses one thread while any job trains (two threads per job only fight on 2 cores).

Closed tabs: Streamlit 1.67 has no hook for the end of a session (it even keeps a disconnected
session's state for `server.disconnectedSessionTTL`, 120 s, in case the tab reconnects). So the
page's polling fragment calls `beat()` about once a second, and a job that hears no beat for
`Limits.heartbeat_timeout` seconds stops itself: a closed tab, or a page left mid-training,
ends its training within about ten seconds.

This module imports no Streamlit, so the tests drive jobs directly.
"""

from __future__ import annotations

import datetime
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from cnnviz.teaching import Plan, subset
from cnnviz.train import Progress, evaluate, train_steps

MAX_JOBS = 2  # jobs training at once on the whole server: the machine has 2 cores


@dataclass(frozen=True)
class Limits:
    """Bounds on one training job (all in one place, so a teacher can see and change them)."""

    max_steps: int = 900
    max_seconds: float = 60.0  # wall time of the training itself
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
    "failed": "Something went wrong while training.",
}


class Busy(RuntimeError):
    """Every training slot of the server is taken."""


class JobPool:
    """At most `size` jobs train at once, across every session of the server."""

    def __init__(self, size: int = MAX_JOBS):
        self.size = size
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    def try_acquire(self) -> bool:
        with self._lock:
            if self._running >= self.size:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)


POOL = JobPool()


class _BlasGate:
    """One BLAS thread while any job trains; the original setting back when the last one ends.

    The limit is process-wide (OpenBLAS has one pool), hence the count. Needs threadpoolctl;
    without it training still works, only slower on a busy machine.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    @contextmanager
    def one_thread(self):
        with self._lock:
            if self._users == 0:
                self._limiter = _limit_blas(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._limiter is not None:
                    self._limiter.restore_original_limits()
                    self._limiter = None


def _limit_blas(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


BLAS = _BlasGate()

_SERVER_BLAS: list = []
_SERVER_BLAS_LOCK = threading.Lock()


def one_blas_thread_per_call() -> None:
    """Limit NumPy's BLAS to one thread in this process, once (later calls do nothing).

    The app multiplies small matrices (32x32 pictures, at most 32 maps) for many sessions at once:
    a pool of BLAS threads per call only adds hand-over time and fights the other sessions and the
    browser for the cores. Measured in benchmarks/forward_speed.py: one thread runs the traced
    forward pass several times faster than two on this loaded 2-core machine.
    """
    with _SERVER_BLAS_LOCK:
        if not _SERVER_BLAS:
            _SERVER_BLAS.append(_limit_blas(1))


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
    are copied for the page every `limits.every` steps.
    """

    def __init__(self, plan: Plan, limits: Limits = LEARN_LIMITS, kind: str = "learn", pool: JobPool = POOL,
                 clock=time.monotonic, watch: str = "conv1_1"):
        self.plan, self.limits, self.kind, self.pool, self.clock, self.watch = plan, limits, kind, pool, clock, watch
        self.steps = min(plan.steps, limits.max_steps)
        self.status = "new"  # new, running, then a key of ENDINGS
        self.error = ""
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
        if not self.pool.try_acquire():
            raise Busy(f"{self.pool.size} trainings are already running")
        self.started = self.last_seen = self.clock()
        self.status = "running"
        self._thread = threading.Thread(target=self._run, name=f"cnnviz-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop; it does within one training step."""
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
    def _why_stop(self) -> str | None:
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
            with BLAS.one_thread(), np.errstate(over="ignore", invalid="ignore"):  # blow-ups are caught below
                ending = self._train()
                if not _finite(self.plan.trainer.params):
                    ending = "diverged"
                if ending != "diverged":
                    self._finish_model(ending)
        except Exception as e:  # a failure ends this job only, never the server; the page shows it
            ending, self.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            self.ended = self.clock()
            self.status = ending
            self.pool.release()

    def _train(self) -> str:
        p, lim, tr = self.plan, self.limits, self.plan.trainer
        probe = subset(p.test, lim.eval_images) if p.test is not None and len(p.test) else None
        heard: list[Progress] = []
        if probe is not None:  # where the accuracy curve starts: about chance
            self.tests.append((0, evaluate(tr.model(), probe)))
        while True:
            why = self._why_stop()
            if why or tr.step >= self.steps:
                return why or "finished"
            heard.clear()
            ran = train_steps(tr, p.train, min(lim.every, self.steps - tr.step), heard.append,
                              lambda: self._why_stop() is not None)
            if ran == 0:  # a stop arrived before the chunk's first step, or the schedule has ended
                return self._why_stop() or "finished"
            last = heard[-1]
            if not np.isfinite(last.loss):
                return "diverged"
            test = None
            if probe is not None and (tr.step % lim.eval_every < ran or tr.step >= self.steps):
                test = evaluate(tr.model(), probe)
            with self._lock:
                self.step = tr.step
                self.points.append(Point(tr.step, float(last.loss), float(last.accuracy)))
                if test is not None:
                    self.tests.append((tr.step, test))
                self.filters = np.array(tr.params[self.watch]["weight"])
                self.images_per_s = last.images_per_s

    def _finish_model(self, ending: str) -> None:
        p, tr = self.plan, self.plan.trainer
        model = tr.model()
        acc = evaluate(model, p.test) if p.test is not None and len(p.test) else None
        meta = {**p.meta, "steps": tr.step, "epochs": round(tr.step * tr.config.batch_size / max(1, len(p.train)), 2),
                "train_seconds": round(self.clock() - self.started, 1), "ended": ending,
                "date": datetime.date.today().isoformat()}
        if acc is not None:
            meta["test_accuracy"] = round(acc, 4)
        self.model, self.test_accuracy = replace(model, meta={**model.meta, **meta}), acc
