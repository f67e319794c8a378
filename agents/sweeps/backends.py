"""Where a sweep's runs run: local worker processes, or Ray.

Both backends play every attempt through an `Attempt` (`play_attempt` unless the caller
gives its own) and retry a run only when its worker dies (killed, out of memory, a crash in
native code): a run that raises would raise again, so it is recorded as an error at once. A
death costs only that run's attempt.

- ``process``: ``workers`` worker processes, each with its own pipe, each sent one run at
  a time, so we always know which run a worker holds. A worker whose pipe closes or whose
  process ends before it sent a whole result died, whatever its exit status: its run goes
  back to the front of the queue and a fresh worker takes the next. (A shared task queue
  cannot tell which task a dead worker took: `concurrent.futures.ProcessPoolExecutor`
  breaks the whole pool, `multiprocessing.Pool` waits forever for the lost task.)
  Workers fork from a forkserver that has already imported simcity, so they start fast
  and never inherit the parent's threads; a worker keeps its last cities between runs
  (`agents.sweeps.sweep`), so later runs of a city skip the traffic equilibria already solved.
- ``ray``: one task per attempt. Ray's own ``max_retries`` is 0: the driver resubmits a
  run whose task failed with a system error (worker or node died, out of memory), so it
  knows every attempt and why it failed. (Ray's retries are out of sight; counting them
  takes a blocking call from inside the task, during which Ray hands the task's CPU to
  another queued task, in a new worker process with cold caches.) Ray reuses its worker
  processes between tasks, so they keep their cities too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from agents.sweeps.sweep import RunResult, RunSpec, Status, play
from simcity.errors import SimcityError

OnResult = Callable[[RunResult], None] | None


@dataclass(frozen=True)
class Outcome:
    """What one attempt that ran to its end sends back."""

    kpis: dict[str, float] | None  # None when the run raised
    error: str
    warnings: tuple[str, ...]


Attempt = Callable[[RunSpec, int], Outcome]
"""Plays attempt ``number`` (from 1) of a run in a worker and says how it ended.

It crosses to the workers by pickle (Ray: cloudpickle), so it must be a module-level
function, or an instance of a module-level class, importable in a fresh process. A caller's
own one (a test's fault injection, say) usually wraps `play_attempt`."""


def play_attempt(
    spec: RunSpec, number: int = 1, on_step: Callable[[dict[str, Any]], None] | None = None
) -> Outcome:
    """Play attempt ``number`` of ``spec``, catching its error and its warnings (told once
    each); every attempt plays the same. ``on_step`` sees each step's info."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kpis = play(spec, on_step=on_step)
        except Exception as err:
            return Outcome(None, f"{type(err).__name__}: {err}", _unique(caught))
    return Outcome(kpis, "", _unique(caught))


def _unique(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(w.message) for w in caught))


def _result(spec: RunSpec, outcome: Outcome, attempts: int, failures: list[str]) -> RunResult:
    if outcome.kpis is None:
        failures = [*failures, f"attempt {attempts}: {outcome.error}"]
        return RunResult(spec, "error", attempts, tuple(failures), {}, outcome.warnings)
    return RunResult(spec, "ok", attempts, tuple(failures), outcome.kpis, outcome.warnings)


# --- local processes ---------------------------------------------------------------


@dataclass
class _Worker:
    """A worker process, our end of its pipe, the run and attempt it holds, and since when."""

    process: BaseProcess
    conn: Connection
    job: tuple[RunSpec, int] | None = None
    started: float = 0.0
    playing: bool = False  # the worker said it took the job (`STARTED`)


def _context() -> BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["agents.sweeps.backends"])
    return context


STARTED = "started"
"""What a worker sends when it takes a job, before the `Outcome`: a run's time starts there."""
STARTUP_GRACE_S = 120.0
"""With a timeout: how long a new worker may take to start (imports) before it takes its job."""


def _serve(conn: Connection) -> None:
    """A worker's loop: play each (attempt, spec, number) it is sent, send back the `Outcome`."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        play_one, spec, number = job
        conn.send(STARTED)
        conn.send(play_one(spec, number))


def _start_worker(context: BaseContext, number: int) -> _Worker:
    ours, theirs = context.Pipe()
    process = context.Process(  # type: ignore[attr-defined]
        target=_serve, args=(theirs,), name=f"simcity-sweep-{number}", daemon=True
    )
    process.start()
    theirs.close()  # the worker holds the only other end: its death means EOF here
    return _Worker(process, ours)


def run_processes(
    specs: Sequence[RunSpec],
    *,
    workers: int,
    retries: int,
    attempt: Attempt,
    on_result: OnResult,
    timeout_s: float | None = None,
) -> list[RunResult]:
    """Every run in ``workers`` worker processes, one run at a time each; see module doc.

    An attempt still running after ``timeout_s`` seconds has its worker killed, and is
    retried like one whose worker died; out of retries, the run is ``timeout``."""
    context = _context()
    queue = deque((spec, 1) for spec in specs)
    failures: dict[int, list[str]] = {spec.run_id: [] for spec in specs}
    idle: list[_Worker] = []
    busy: list[_Worker] = []
    started = 0
    results: list[RunResult] = []
    try:
        while queue or busy:
            while queue and len(busy) < workers:
                while idle and not idle[-1].process.is_alive():  # died between runs
                    _stop(idle.pop())
                if not idle:
                    started += 1
                    idle.append(_start_worker(context, started))
                worker = idle.pop()
                spec, number = queue.popleft()
                worker.job, worker.started = (spec, number), time.monotonic()
                worker.playing = False
                busy.append(worker)
                with contextlib.suppress(OSError):  # it died just now: the wait sees it
                    worker.conn.send((attempt, spec, number))
            waits = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(waits, timeout=_time_left(busy, timeout_s)))
            for worker in busy:  # a worker that took its job: the run's clock starts now
                if not worker.playing and worker.conn in ready and _took_job(worker):
                    worker.playing, worker.started = True, time.monotonic()
                    ready.discard(worker.conn)
            now = time.monotonic()
            for worker in [
                w
                for w in busy
                if w.conn in ready
                or w.process.sentinel in ready
                or (timeout_s is not None and now >= _deadline(w, timeout_s))
            ]:
                busy.remove(worker)
                assert worker.job is not None
                spec, number = worker.job
                worker.job = None
                done = worker.conn in ready or worker.process.sentinel in ready
                if done and not worker.playing:
                    worker.playing = _took_job(worker)
                outcome = _receive(worker) if done else None
                if outcome is not None:
                    idle.append(worker)
                    result = _result(spec, outcome, number, failures[spec.run_id])
                else:
                    if done:
                        _stop(worker, wait_s=5.0)  # reaped, so its exit status is known
                        why = f"worker died ({_exit(worker.process.exitcode)})"
                    else:
                        _stop(worker, wait_s=0.0)  # killed: it is past its time
                        why = f"timed out after {timeout_s:g} s"
                    failures[spec.run_id].append(f"attempt {number}: {why}")
                    if number <= retries:
                        queue.appendleft((spec, number + 1))
                        continue
                    status: Status = "failed" if done else "timeout"
                    result = RunResult(spec, status, number, tuple(failures[spec.run_id]))
                results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        for worker in idle + busy:
            _stop(worker, wait_s=0.0 if worker.job else 5.0)
    return results


def _deadline(worker: _Worker, timeout_s: float) -> float:
    """When ``worker``'s attempt is past its time (a worker still starting gets a grace)."""
    return worker.started + timeout_s + (0.0 if worker.playing else STARTUP_GRACE_S)


def _time_left(busy: Sequence[_Worker], timeout_s: float | None) -> float | None:
    """Seconds until the first busy worker's attempt is past ``timeout_s`` (None: no limit)."""
    if timeout_s is None or not busy:
        return None
    return max(0.0, min(_deadline(w, timeout_s) for w in busy) - time.monotonic())


def _took_job(worker: _Worker) -> bool:
    """Read the worker's `STARTED` if it is there; False when it died before sending it."""
    try:
        return bool(worker.conn.poll(0)) and worker.conn.recv() == STARTED
    except (EOFError, OSError):
        return False


def _receive(worker: _Worker) -> Outcome | None:
    """The worker's outcome, or None when it died without sending one whole."""
    try:
        # Ready, or EOF, at once when the worker is gone; the wait only guards against a
        # copy of its end leaked to another process, which would make recv block forever.
        message = worker.conn.recv() if worker.conn.poll(1.0) else None
    except (EOFError, OSError):
        message = None
    return message if isinstance(message, Outcome) else None


def _stop(worker: _Worker, wait_s: float = 0.0) -> None:
    """End a worker: ask it to stop, kill it if it has not within ``wait_s``."""
    with contextlib.suppress(OSError):
        worker.conn.send(None)
    worker.process.join(wait_s)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    worker.conn.close()


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit status {code}"


# --- Ray ---------------------------------------------------------------------------


def run_ray(
    specs: Sequence[RunSpec],
    *,
    workers: int,
    address: str | None,
    retries: int,
    attempt: Attempt,
    on_result: OnResult,
    timeout_s: float | None = None,
) -> list[RunResult]:
    """Every run as a Ray task; a local Ray with ``workers`` CPUs unless ``address``.

    With ``timeout_s``, at most as many tasks as the cluster has CPUs are in flight (so a
    task's clock starts when it can run), and a task past its time is cancelled
    (``ray.cancel(force=True)`` kills its worker) and retried like a dead worker."""
    try:
        import ray
    except ImportError:
        raise SimcityError(
            "Ray is not installed",
            field="--backend ray",
            # Not "simcity[ray]": the CLI prints errors as rich markup, which eats "[ray]".
            expected="pip install ray (the ray extra of simcity), or --backend process",
        ) from None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
        try:
            if address is not None:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise SimcityError(
                f"cannot start or reach Ray: {err}", field="--address", expected="ray://HOST:PORT"
            ) from None
    task: Any = ray.remote(num_cpus=1, max_retries=0)(_ray_attempt)
    slots = len(specs)
    if timeout_s is not None:
        slots = max(1, int(ray.cluster_resources().get("CPU", workers)))
    queue = deque((spec, 1) for spec in specs)
    pending: dict[Any, tuple[RunSpec, int]] = {}
    started_at: dict[Any, float] = {}
    failures: dict[int, list[str]] = {spec.run_id: [] for spec in specs}
    results: list[RunResult] = []
    try:
        while pending or queue:
            while queue and len(pending) < slots:
                spec, number = queue.popleft()
                ref = task.remote(attempt, spec, number)
                pending[ref], started_at[ref] = (spec, number), time.monotonic()
            left = None
            if timeout_s is not None:
                left = max(0.0, min(started_at.values()) + timeout_s - time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=left)
            if not ready:
                for ref in [
                    r for r in pending if time.monotonic() - started_at[r] >= (timeout_s or 0)
                ]:
                    spec, number = pending.pop(ref)
                    started_at.pop(ref)
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                    failures[spec.run_id].append(
                        f"attempt {number}: timed out after {timeout_s:g} s"
                    )
                    if number <= retries:
                        queue.appendleft((spec, number + 1))
                        continue
                    result = RunResult(spec, "timeout", number, tuple(failures[spec.run_id]))
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
                continue
            (ref,) = ready
            spec, number = pending.pop(ref)
            started_at.pop(ref, None)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as err:
                # An `Attempt` catches the run's own exceptions, so this is the worker, its
                # node or its memory, or (RayTaskError) the task could not even start.
                text = str(err).strip()
                reason = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
                died = not isinstance(err, ray.exceptions.RayTaskError)
                failures[spec.run_id].append(
                    f"attempt {number}: " + (f"worker died ({reason})" if died else reason)
                )
                if died and number <= retries:
                    queue.appendleft((spec, number + 1))
                    continue
                status: Status = "failed" if died else "error"
                result = RunResult(spec, status, number, tuple(failures[spec.run_id]))
            else:
                result = _result(spec, outcome, number, failures[spec.run_id])
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results
    finally:
        for ref in pending:  # only when interrupted
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _ray_attempt(attempt: Attempt, spec: RunSpec, number: int) -> Outcome:
    """A Ray task: ``attempt(spec, number)`` (a remote function takes its callable along)."""
    return attempt(spec, number)
