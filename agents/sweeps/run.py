"""Run a sweep's runs on a backend: local worker processes or Ray (`agents.sweeps.backends`).

A run whose worker dies is retried and its attempts recorded; results come back sorted by
run id, each worker's warnings told once here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

from agents.sweeps import backends as sweep_backends
from agents.sweeps.backends import Attempt, play_attempt
from agents.sweeps.sweep import MAX_TIMEOUT_S, Backend, RunResult, RunSpec
from simcity.errors import SimcityError


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_sweep(
    specs: Sequence[RunSpec],
    backend: Backend = "process",
    workers: int | None = None,
    address: str | None = None,
    retries: int = 2,
    on_result: Callable[[RunResult], None] | None = None,
    attempt: Attempt = play_attempt,
    timeout_s: float | None = None,
) -> list[RunResult]:
    """Run every spec on ``backend`` with ``workers`` at a time; results sorted by run id.

    A run whose worker process dies is run again, up to ``retries`` more times; so is one
    whose attempt runs past ``timeout_s`` seconds (its worker killed), and out of retries
    it is recorded as ``timeout``. ``address``
    is a Ray cluster's (``ray`` backend only; a local Ray with ``workers`` CPUs when None).
    ``on_result`` is called in this process as each run ends. ``attempt`` plays one attempt
    of a run in a worker (`agents.sweeps.backends.Attempt`: picklable, importable there);
    the default plays the run, and a caller's own may add to it (the tests' fault
    injection kills its worker). Local workers import the caller's main module, as
    `multiprocessing` does, so a script must guard its work with
    ``if __name__ == "__main__":``.
    """
    ids = [spec.run_id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("run ids are not unique")
    if retries < 0:
        raise SimcityError(f"is {retries}", field="--retries", expected=">= 0")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise SimcityError(f"is {workers}", field="--workers", expected=">= 1")
    if address is not None and backend != "ray":
        raise SimcityError("needs --backend ray", field="--address")
    if timeout_s is not None and not 0.0 < timeout_s <= MAX_TIMEOUT_S:
        raise SimcityError(
            f"is {timeout_s!r}",
            field="--timeout-s",
            expected=f"seconds, > 0 and <= {MAX_TIMEOUT_S:g}",
        )
    if backend == "process":
        results = sweep_backends.run_processes(
            specs,
            workers=min(workers, max(len(specs), 1)),
            retries=retries,
            attempt=attempt,
            on_result=on_result,
            timeout_s=timeout_s,
        )
    elif backend == "ray":
        results = sweep_backends.run_ray(
            specs,
            workers=workers,
            address=address,
            retries=retries,
            attempt=attempt,
            on_result=on_result,
            timeout_s=timeout_s,
        )
    else:
        raise SimcityError(
            f"unknown backend {backend!r}", field="--backend", expected="process or ray"
        )
    if sorted(r.spec.run_id for r in results) != sorted(ids):
        raise RuntimeError("a sweep backend lost or duplicated a run")  # an invariant
    told = dict.fromkeys(text for r in results for text in r.warnings)
    for text in told:  # each warning of the workers once, here
        warnings.warn(text, UserWarning, stacklevel=2)
    return sorted(results, key=lambda r: r.spec.run_id)
