"""A class of 60 asks to train at the same moment: how long does the last student wait for a turn?

    python benchmarks/training_queue.py                  # 60 students, the page's default training (~3 min)
    python benchmarks/training_queue.py --steps 25       # shorter trainings (about 1 min)
    python benchmarks/training_queue.py --passes 10      # the slider's longest training

Every student asks at once (threads released by a barrier) through one `TrainingQueue` with the
server's `MAX_JOBS` slots, on the real clock, with the "Watch it learn" page's network, pictures,
settings and limits (4 passes over 2,000 pictures: 252 steps). A poller thread plays the 60
open pages: it polls every waiting job and beats every running one twice a second, as the page's
fragment does once a second. Printed: each student's wait against what the queue estimated when
they asked, the last student's wait, and that wait scaled to the page's full-length trainings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from cnnviz import jobs as J  # noqa: E402
from cnnviz.teaching import LiveConfig, live_plan, teaching_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--steps", type=int, default=J.LEARN_LIMITS.max_steps,
                        help="at most this many training steps per student (default: the page's cap)")
    parser.add_argument("--passes", type=int, default=LiveConfig.epochs, help="passes over the pictures (1-10)")
    parser.add_argument("--slots", type=int, default=J.MAX_JOBS)
    args = parser.parse_args()

    J.one_blas_thread_per_call()  # as the app does
    train, test = teaching_dataset(400, seed=0), teaching_dataset(100, seed=1)  # the learn page's pictures
    limits = J.LEARN_LIMITS
    queue = J.TrainingQueue(J.JobSlots(args.slots))
    config = LiveConfig(epochs=args.passes)
    jobs = [queue.job(live_plan(train, test, config, args.steps, "shapes"), limits) for _ in range(args.students)]
    asked, estimate, refused = {}, {}, []
    barrier = threading.Barrier(args.students)

    def student(k: int) -> None:
        barrier.wait()
        asked[k] = time.monotonic()
        try:
            queue.submit(f"student-{k}", jobs[k])
        except J.Refused as e:
            refused.append((k, str(e)))
            return
        turn = queue.turn(jobs[k])
        estimate[k] = 0.0 if turn is None else turn.wait

    done = threading.Event()
    later = {}  # once a tenth of the trainings have ended: k -> when the queue then expected k to start

    def pages() -> None:  # the open pages' polling fragments
        while not done.wait(0.5):
            ended = sum(j.started is not None and not j.running for j in jobs)
            for k, job in enumerate(jobs):
                if job.waiting:
                    turn = queue.poll(job)
                    if turn is not None and ended >= args.students // 10 and not later.get("taken"):
                        later[k] = time.monotonic() + turn.wait
                elif job.running:
                    job.beat()
            if ended >= args.students // 10 and len(later) > 0:
                later["taken"] = True

    poller = threading.Thread(target=pages, daemon=True)
    poller.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=student, args=(k,)) for k in range(args.students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while any(job.waiting or job.running for job in jobs):  # a waiting job has no thread to join yet
        time.sleep(0.05)
    for job in jobs:
        job.join()
    done.set()
    poller.join()
    total = time.monotonic() - t0

    waits = {k: jobs[k].started - asked[k] for k in asked if jobs[k].started is not None}
    runs = [j.elapsed for j in jobs if j.started is not None]
    order = sorted(waits, key=waits.get)
    print(f"{args.students} students, {args.slots} slots, {jobs[0].steps} steps each, endings: "
          f"{ {s: sum(j.status == s for j in jobs) for s in {j.status for j in jobs}} }")
    if refused:
        print(f"refused: {len(refused)}, e.g. {refused[0][1]}")
    print(f"{'turn':>4} {'waited s':>9} {'estimated s':>12} {'trained s':>10}")
    for n, k in enumerate(order, 1):
        if n <= 4 or n > len(order) - 4 or n % 10 == 0:
            print(f"{n:>4} {waits[k]:>9.1f} {estimate[k]:>12.1f} {jobs[k].elapsed:>10.1f}")
    last = waits[order[-1]]
    if order[-1] in later:
        error = later[order[-1]] - jobs[order[-1]].started
        print(f"\nonce {args.students // 10} trainings had ended, the queue's estimate for the last student was "
              f"off by {error:+.1f} s (before any had ended it assumed each would take its cap, "
              f"{limits.max_seconds:.0f} s)")
    run = statistics.mean(runs)
    rounds = -(-args.students // args.slots) - 1  # turns before the last student's
    print(f"the last student waited {last:.1f} s (median wait {statistics.median(waits.values()):.1f} s); "
          f"a training took {run:.2f} s on average; all done in {total:.1f} s")
    print(f"hand-over overhead: {last - rounds * run:+.2f} s over {rounds} rounds of {run:.2f} s")
    full = limits.max_seconds
    print(f"with the page's full trainings (each at most {full:.0f} s), the last of {args.students} students "
          f"would wait about {rounds} x {full:.0f} s = {rounds * full / 60:.0f} min")


if __name__ == "__main__":
    main()
