"""``labkit run --all --jobs N``: several scenario notebooks at once, longest first.

Why processes, and why these
----------------------------
A scenario run is papermill driving one Jupyter kernel: the kernel (a process of
its own) computes, the runner mostly waits on ZeroMQ.  Running several side by side
could be done with threads in one runner, but papermill's logging, nbclient's event
loops and the per-run log redirection (:func:`labkit.app.runner._papermill_log_to`) are
process-wide state, so each scenario runs in its own worker process instead, exactly
as ``labkit run NAME`` would run it: its own kernel, its own ``run.log``, its own
``metrics.json``.  Nothing is shared between two runs but the machine, so the outputs
are those of a serial run.

The workers are forked from a ``forkserver`` that has already imported the runner and
papermill (``_PRELOAD``): that start-up is paid once per ``labkit run --all``, not once
per scenario, and the fork happens from a clean, single-threaded process (never from
this one, whose progress display runs a thread).  A worker runs one scenario and exits.

Order
-----
The total time of a batch on N workers approaches the longest single notebook only if
the long ones start first: a long notebook started last runs alone at the end.  So the
scenarios are handed out longest first (the "longest processing time" rule), by their
measured headless run times in ``labkit/data/workshop-durations.yaml``
(:mod:`labkit.workshop.durations`); a scenario never measured counts as the longest
(it may be), and ties keep catalogue order.  ``on_start`` and ``on_done`` see that
real order -- one progress line per scenario as it finishes -- but the results come
back in the catalogue order, so the summary table reads the same as a serial run's.

Failures and interrupts
-----------------------
A scenario that fails is a failed :class:`~labkit.app.runner.RunResult`, as in a serial
run, and the others go on.  A worker that dies without a result (killed, out of
memory) is a failed result saying so.  An unexpected exception inside a worker (a bug
in labkit) is raised here, as it would have been serially, after the other workers are
stopped.  On Ctrl-C every worker gets the interrupt too (same process group), shuts
its kernel down as a serial run does, and is given a few seconds before it is
terminated; a kernel that outlives its worker exits on its own (ipykernel watches its
parent).
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

if TYPE_CHECKING:
    from labkit.scenarios.spec import Scenario

R = TypeVar("R")

__all__ = ["default_jobs", "run_parallel", "schedule"]

#: Modules the forkserver imports once, so that every worker starts with them loaded.
_PRELOAD = ["labkit.app.runner", "papermill", "nbclient", "nbformat", "jupyter_client"]
#: Seconds the workers get to shut their kernels down after Ctrl-C before they are terminated.
_STOP_GRACE_S = 5.0


def default_jobs() -> int:
    """The default ``--jobs``: the number of cores."""
    return os.cpu_count() or 1


def recorded_durations() -> dict[str, float]:
    """Scenario name -> measured headless run time in seconds (see :mod:`labkit.workshop.durations`)."""
    from labkit.workshop.durations import load

    return load()


def schedule(scenarios: list[Scenario], durations: Mapping[str, float]) -> list[Scenario]:
    """``scenarios`` longest first by ``durations``; unmeasured ones first; ties in the given order."""
    return sorted(scenarios, key=lambda sc: -durations.get(sc.name, math.inf))  # stable: ties keep their order


def _worker(conn: Connection, run: Callable[[Scenario], Any], sc: Scenario, environ: dict[str, str]) -> None:
    """In the worker process: ``run(sc)`` and send back ``("ok", result)`` or ``("raised", exception)``.

    ``environ`` is the caller's environment now: the forkserver's is the one it started
    with (multiprocessing passes the working directory and ``sys.path``, not the environment).
    """
    os.environ.clear()
    os.environ.update(environ)
    try:
        message: tuple[str, Any] = ("ok", run(sc))
    except KeyboardInterrupt:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        message = ("raised", exc)
    with conn:
        try:
            conn.send(message)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text instead
            conn.send(("raised", RuntimeError(f"{type(message[1]).__name__}: {message[1]}")))


def _receive(conn: Connection) -> tuple[str, Any] | None:
    """The worker's message, or None when it exited without sending one."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None
    finally:
        conn.close()


def _lost(exitcode: int | None) -> str:
    how = f"was killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exited ({exitcode})"
    return f"its worker process {how} without a result"


def _context() -> Any:
    """The forkserver context with the runner preloaded (spawn where there is no forkserver: Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - POSIX has it
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_parallel(scenarios: list[Scenario], run: Callable[[Scenario], R], jobs: int, *,
                 lost: Callable[[Scenario, str], R], on_start: Callable[[Scenario], None] | None = None,
                 on_done: Callable[[Scenario, R], None] | None = None,
                 durations: Mapping[str, float] | None = None) -> list[R]:
    """``run(sc)`` for each scenario in worker processes, at most ``jobs`` at a time; results in the given order.

    ``run`` must pickle (a module-level function, or a ``functools.partial`` of one);
    ``lost(sc, why)`` is the result of a worker that died without one.  ``durations``
    (default: the recorded ones) orders the runs, longest first.
    """
    ctx = _context()
    pending = schedule(scenarios, recorded_durations() if durations is None else durations)
    index = {sc.name: i for i, sc in enumerate(scenarios)}
    # receiving end -> (scenario, worker); waiting on the pipe, not the process, so a large result never blocks
    running: dict[Connection, tuple[Scenario, Any]] = {}
    results: dict[str, R] = {}
    raised: BaseException | None = None
    try:
        while running or (pending and raised is None):
            while pending and len(running) < jobs and raised is None:
                sc = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(send, run, sc, dict(os.environ)),
                                   name=f"labkit-run-{sc.name}")
                if on_start:
                    on_start(sc)
                proc.start()
                send.close()
                running[receive] = (sc, proc)
            for receive in sorted(wait(list(running)), key=lambda c: index[running[c][0].name]):
                sc, proc = running.pop(receive)
                message = _receive(receive)
                proc.join()
                if message is not None and message[0] == "raised":
                    raised = raised or message[1]
                    continue
                res = message[1] if message is not None else lost(sc, _lost(proc.exitcode))
                results[sc.name] = res
                if on_done:
                    on_done(sc, res)
            if raised is not None and running:
                _stop([proc for _, proc in running.values()], signal.SIGTERM)
                running.clear()
    except BaseException:
        _stop([proc for _, proc in running.values()], signal.SIGINT)
        raise
    if raised is not None:
        raise raised
    return [results[sc.name] for sc in scenarios]


def _stop(procs: list[Any], sig: int) -> None:
    """Send ``sig`` to each live worker, wait a little, then terminate what is left."""
    for proc in procs:
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.kill(proc.pid, sig)
    for proc in procs:
        proc.join(_STOP_GRACE_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(_STOP_GRACE_S)
