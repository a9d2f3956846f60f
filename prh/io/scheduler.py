"""Snakemake's scheduler, woken once per event instead of once per finished job per second.

Snakemake 9's job scheduler ends every pass of its loop by starting a one-second timer that wakes the loop again
(``JobScheduler._schedule_reevalutation``, for ``--max-jobs-per-timespan``, default ``100/1s``). A job's end
wakes the loop as well, and that pass starts one more timer: the timers never merge, so after ``n`` jobs have
finished the loop runs about ``n`` times a second, and each pass stats the inputs of every ready job. A forced
rerun of the default run's 210 pair jobs made 27,536 passes, and Snakemake's process took 11-15 % of a cold
run's CPU (docs/benchmarks.md; upstream, snakemake/snakemake#3744 describes the loop running before the
timespan has passed). ``one_pending_wakeup`` keeps at most one such timer at a time, so the loop still wakes once a
timespan for the rate limit and at once for every job event, as before.
"""

from __future__ import annotations

import threading


def one_pending_wakeup() -> bool:
    """Make Snakemake's scheduler keep at most one pending re-evaluation timer (a daemon thread, so that
    Snakemake's exit does not wait for it). Returns whether the scheduler was changed: False where this
    Snakemake has no such timer (another version) or it was changed already."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    original = getattr(JobScheduler, "_schedule_reevalutation", None)
    if original is None or getattr(original, "one_pending", False):
        return False
    lock = threading.Lock()

    def schedule_reevaluation(self, delay: float) -> None:
        with lock:
            if getattr(self, "_wakeup_pending", False):
                return
            self._wakeup_pending = True

        def wake() -> None:
            self._wakeup_pending = False
            self._open_jobs.release()

        timer = threading.Timer(delay, wake)
        timer.daemon = True
        timer.start()

    schedule_reevaluation.one_pending = True
    JobScheduler._schedule_reevalutation = schedule_reevaluation
    return True
