"""Where a sweep's runs run: local worker processes, or Ray.

Both backends play every attempt through `attempt` and retry a run only when its worker
dies (killed, out of memory, a crash in native code): a run that raises would raise again,
so it is recorded as an error at once. A death costs only that run's attempt.

- ``process``: one child process per attempt, at most ``workers`` alive. The child sends
  its result through its own pipe and exits; a child that exits without a complete result
  died, whatever its exit status, and its run goes back to the front of the queue.
  (`concurrent.futures.ProcessPoolExecutor` breaks the whole pool when one worker dies,
  and `multiprocessing.Pool` waits forever for the lost task.) Children fork from a
  forkserver that has already imported simcity, so an attempt starts in milliseconds and
  never inherits the threads of the parent.
- ``ray``: one task per run with Ray's ``max_retries`` (retried on worker or node death,
  never on an exception). Each attempt first asks a small actor for its attempt number,
  so retries that Ray makes out of sight are still counted.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from agents.sweep import RunResult, RunSpec, play
from simcity.errors import SimcityError

OnResult = Callable[[RunResult], None] | None


@dataclass(frozen=True)
class Outcome:
    """What one attempt that ran to its end sends back."""

    kpis: dict[str, float] | None  # None when the run raised
    error: str
    warnings: tuple[str, ...]


def attempt(spec: RunSpec, kill: bool = False) -> Outcome:
    """Play one attempt of ``spec``, catching its error and its warnings (told once each).

    With ``kill`` (fault injection), the worker SIGKILLs itself after the second step.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kpis = play(spec, on_step=_killer(spec) if kill else None)
        except Exception as err:
            return Outcome(None, f"{type(err).__name__}: {err}", _unique(caught))
    return Outcome(kpis, "", _unique(caught))


def _unique(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(w.message) for w in caught))


def _killer(spec: RunSpec) -> Callable[[dict[str, Any]], None]:
    steps = 0

    def on_step(info: dict[str, Any]) -> None:
        nonlocal steps
        steps += 1
        if steps == 2:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    return on_step


def _result(spec: RunSpec, outcome: Outcome, attempts: int, failures: list[str]) -> RunResult:
    if outcome.kpis is None:
        failures = [*failures, f"attempt {attempts}: {outcome.error}"]
        return RunResult(spec, "error", attempts, tuple(failures), {}, outcome.warnings)
    return RunResult(spec, "ok", attempts, tuple(failures), outcome.kpis, outcome.warnings)


# --- local processes ---------------------------------------------------------------


@dataclass
class _Attempt:
    spec: RunSpec
    number: int
    process: BaseProcess
    conn: Connection


def _context() -> BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["agents.sweep_backends"])
    return context


def _child(spec: RunSpec, kill: bool, conn: Connection) -> None:
    try:
        conn.send(attempt(spec, kill))
    finally:
        conn.close()


def run_processes(
    specs: Sequence[RunSpec],
    *,
    workers: int,
    retries: int,
    kill: frozenset[int],
    on_result: OnResult,
) -> list[RunResult]:
    """Every run in child processes, ``workers`` at a time; see the module doc."""
    context = _context()
    queue = deque((spec, 1) for spec in specs)
    failures: dict[int, list[str]] = {spec.run_id: [] for spec in specs}
    running: list[_Attempt] = []
    results: list[RunResult] = []
    try:
        while queue or running:
            while queue and len(running) < workers:
                spec, number = queue.popleft()
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(  # type: ignore[attr-defined]
                    target=_child,
                    args=(spec, number == 1 and spec.run_id in kill, sender),
                    name=f"simcity-sweep-run-{spec.run_id}",
                    daemon=True,
                )
                process.start()
                sender.close()  # the child holds the only writer: its death means EOF here
                running.append(_Attempt(spec, number, process, receiver))
            ready = set(wait([a.conn for a in running] + [a.process.sentinel for a in running]))
            for done in [a for a in running if a.conn in ready or a.process.sentinel in ready]:
                running.remove(done)
                outcome = _receive(done)
                run_failures = failures[done.spec.run_id]
                if outcome is not None:
                    result = _result(done.spec, outcome, done.number, run_failures)
                else:
                    run_failures.append(
                        f"attempt {done.number}: worker died ({_exit(done.process.exitcode)})"
                    )
                    if done.number <= retries:
                        queue.appendleft((done.spec, done.number + 1))
                        continue
                    result = RunResult(done.spec, "failed", done.number, tuple(run_failures))
                results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        for left in running:
            left.process.kill()
            left.process.join()
            left.conn.close()
    return results


def _receive(done: _Attempt) -> Outcome | None:
    """The attempt's outcome, or None when its process died without sending one whole."""
    try:
        # Ready, or EOF, at once once the child is gone; the wait only guards against a
        # writer end leaked to some other process, which would make recv block forever.
        message = done.conn.recv() if done.conn.poll(1.0) else None
    except (EOFError, OSError):
        message = None
    finally:
        done.conn.close()
    done.process.join()
    return message if isinstance(message, Outcome) else None


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit status {code}"


# --- Ray ---------------------------------------------------------------------------


class AttemptCounter:
    """Attempts started per run id; lives in one Ray actor while the sweep runs."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def begin(self, run_id: int) -> int:
        self.counts[run_id] = self.counts.get(run_id, 0) + 1
        return self.counts[run_id]

    def attempts(self, run_id: int) -> int:
        return self.counts.get(run_id, 0)


def _ray_attempt(spec: RunSpec, counter: Any, kill: bool) -> tuple[int, Outcome]:
    import ray

    number = int(ray.get(counter.begin.remote(spec.run_id)))
    return number, attempt(spec, kill and number == 1)


def run_ray(
    specs: Sequence[RunSpec],
    *,
    workers: int,
    address: str | None,
    retries: int,
    kill: frozenset[int],
    on_result: OnResult,
) -> list[RunResult]:
    """Every run as a Ray task; a local Ray with ``workers`` CPUs unless ``address``."""
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
    try:
        counter: Any = ray.remote(num_cpus=0)(AttemptCounter).remote()
        task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_ray_attempt)
        pending = {task.remote(spec, counter, spec.run_id in kill): spec for spec in specs}
        results: list[RunResult] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            try:
                number, outcome = ray.get(done[0])
                died = [f"attempt {k}: worker died" for k in range(1, number)]
                result = _result(spec, outcome, number, died)
            except ray.exceptions.RayError as err:
                number = int(ray.get(counter.attempts.remote(spec.run_id)))
                reason = (
                    str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                )
                died = [f"attempt {k}: worker died" for k in range(1, number)]
                died.append(f"attempt {number}: worker died ({type(err).__name__}: {reason})")
                result = RunResult(spec, "failed", number, tuple(died))
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results
    finally:
        if started:
            ray.shutdown()
