"""Run a scenario's notebook headless with papermill and check what it hands back.

One run:

1. resolve the parameters: the scenario YAML's defaults (on a real cluster overlaid with
   its ``real_cluster.parameters``) overlaid with ``--param k=v`` (coerced and validated by
   :mod:`labkit.scenarios.spec`), plus the three every notebook gets -- ``seed``, ``cluster``
   and ``out_dir`` (absolute).  A ``--cluster`` the YAML's ``clusters:`` does not list is
   refused here, before anything starts;
2. make the cluster usable (:func:`labkit.scenarios.backend.provision`): ``--cluster kwok``
   with no ``labkit`` control plane running starts a temporary one for the run and deletes
   it afterwards; namespaces the run created on a real cluster are deleted at the end;
3. papermill executes ``notebook`` with those parameters, in the notebook's own folder,
   on the ``python3`` kernel of *this* interpreter (``LABKIT_KERNEL`` names another
   kernelspec), writing the executed notebook to ``<out_dir>/<name>.ipynb``;
4. the notebook writes ``metrics.json`` and figures into ``out_dir`` (:mod:`labkit.core.report`);
   papermill's log and the kernel process's own output go to ``<out_dir>/run.log``;
5. the runner checks ``metrics.json`` is there, is flat JSON, and holds exactly the keys
   the YAML declares under ``metrics:``.

A notebook that fails is a :class:`RunResult` with ``ok=False`` and a one-paragraph
``error`` (the cell's exception name and message, and where the executed notebook with
the full traceback is) -- never a traceback.  Input mistakes raise
:class:`labkit.core.errors.LabkitError` before anything runs.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from labkit.core.errors import LabkitError
from labkit.core.report import METRICS_FILE
from labkit.scenarios.spec import Scenario, display_path
from labkit.scenarios import spec as scenario_mod

DEFAULT_KERNEL = "python3"
#: papermill's log and the kernel process's own stdout/stderr, kept off the user's terminal.
RUN_LOG = "run.log"
_ANSI = re.compile("\x1b\\[[0-9;]*[A-Za-z]")


@dataclass
class RunResult:
    scenario: str
    ok: bool
    out_dir: Path
    notebook: Path  # the executed notebook
    parameters: dict[str, Any]
    duration_s: float
    metrics: dict[str, Any] | None = None
    error: str | None = None
    figures: list[Path] = field(default_factory=list)


def kernel_name() -> str:
    """The kernelspec papermill starts: ``$LABKIT_KERNEL`` or ``python3``.

    Inside a virtualenv (or conda env) Jupyter prefers the environment's own
    kernelspecs, and a ``python3`` spec whose command is ``python`` is started with
    the running interpreter, so the notebook runs in the same environment as labkit.
    """
    return os.environ.get("LABKIT_KERNEL") or DEFAULT_KERNEL


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(source: Any, limit: int = 70) -> str:
    """The first line of a cell that is not blank or a comment, shortened."""
    for line in str(source or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def check_metrics(sc: Scenario, out_dir: Path) -> dict[str, Any]:
    """The run's metrics; ``LabkitError`` when missing, malformed, or not the declared keys."""
    from labkit.core.report import read_metrics, validate_metrics

    path = out_dir / METRICS_FILE
    if not path.is_file():
        raise LabkitError(
            f"the notebook did not write {METRICS_FILE} to out_dir ({display_path(out_dir)}); "
            "it must call labkit.core.report.write_metrics(metrics, out_dir)",
            file=display_path(sc.notebook),
        )
    metrics = read_metrics(out_dir)
    try:
        validate_metrics(metrics)
    except LabkitError as exc:
        raise LabkitError(f"{METRICS_FILE} is not flat JSON: {exc}", file=display_path(path)) from None
    missing = [k for k in sc.metrics if k not in metrics]
    if missing:
        raise LabkitError(
            f"{METRICS_FILE} lacks metric(s) declared in {sc.display_file}: {', '.join(missing)}",
            file=display_path(path),
        )
    extra = [k for k in metrics if k not in sc.metrics]
    if extra:
        raise LabkitError(
            f"{METRICS_FILE} has metric(s) not declared (and so not documented) in {sc.display_file}: "
            f"{', '.join(extra)}; add them under metrics:",
            file=display_path(path),
        )
    return metrics


def _describe_failure(sc: Scenario, exc: BaseException, executed: Path, log_path: Path, kernel: str) -> str:
    """One paragraph: what failed, where, and where to read the whole traceback."""
    from papermill.exceptions import PapermillExecutionError

    where = display_path(executed)
    if isinstance(exc, PapermillExecutionError):
        cell = f"cell In [{exc.exec_count}]" if exc.exec_count is not None else "a cell"
        first = _first_line(exc.source)
        if first:
            cell += f" ({first})"
        return (
            f"scenario {sc.name!r} failed: {cell} of {display_path(sc.notebook)} raised "
            f"{exc.ename}: {_one_line(exc.evalue)}. The executed notebook, with the full traceback, "
            f"is {where}."
        )
    name = type(exc).__name__
    message = _one_line(exc) or "(no message)"
    tail = (
        f" The partly executed notebook is {where}."
        if executed.is_file()
        else " No executed notebook was written."
    )
    tail += f" The run's log (papermill and the kernel process) is {display_path(log_path)}."
    if name == "NoSuchKernel":
        message += (
            f" (papermill could not find the Jupyter kernel {kernel!r}; run `make setup` "
            "or `python -m ipykernel install --sys-prefix`, or set LABKIT_KERNEL)"
        )
    return f"scenario {sc.name!r} failed: {name}: {message}.{tail}"


def run_scenario(
    sc: Scenario | str,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    seed: int = 0,
    cluster: str = "sim",
    out_dir: str | Path | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Execute one scenario; see the module docstring.  Input errors raise ``LabkitError``."""
    if isinstance(sc, str):
        sc = scenario_mod.get(sc)
    if not isinstance(cluster, str) or not cluster.strip():
        raise LabkitError("--cluster expects sim, kwok, kind or a kube context name", field="cluster")
    values = sc.resolve_params(params, cluster=cluster)  # also refuses a cluster the scenario does not support
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise LabkitError(f"--seed expects an int, got {seed!r}", field="seed")
    _check_notebook(sc)
    out = Path(out_dir if out_dir is not None else Path("reports") / sc.name).resolve()
    if out.exists() and not out.is_dir():
        raise LabkitError("output path exists and is not a folder", file=display_path(out), field="--out")
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{sc.name}.ipynb"
    for stale in (out / METRICS_FILE, executed):
        if stale.exists():
            stale.unlink()

    started = time.monotonic()
    from labkit.scenarios.backend import provision

    with provision(cluster) as target:  # a clear LabkitError before papermill if the cluster is unusable
        return _execute(sc, values, seed, target, out, executed, started, kernel, timeout)


def _execute(sc: Scenario, values: dict[str, Any], seed: int, cluster: str, out: Path, executed: Path,
             started: float, kernel: str | None, timeout: float | None) -> RunResult:
    injected = {**values, "seed": seed, "cluster": cluster, "out_dir": str(out)}

    def result(ok: bool, **kw: Any) -> RunResult:
        return RunResult(
            scenario=sc.name,
            ok=ok,
            out_dir=out,
            notebook=executed,
            parameters=injected,
            duration_s=time.monotonic() - started,
            figures=sorted(out.glob("*.png")),
            **kw,
        )

    import papermill

    engine_kwargs: dict[str, Any] = {}
    config = _kernel_config()
    if config is not None:
        engine_kwargs["config"] = config
    if timeout is not None:
        engine_kwargs["execution_timeout"] = timeout
    log_path = out / RUN_LOG
    kname = kernel or kernel_name()
    with open(log_path, "wb") as kernel_log, _papermill_log_to(log_path):
        km_class = _kernel_manager_class(kernel_log)
        if km_class is not None:
            engine_kwargs["kernel_manager_class"] = km_class
        try:
            papermill.execute_notebook(
                str(sc.notebook),
                str(executed),
                parameters=injected,
                kernel_name=kname,
                progress_bar=False,
                log_output=False,
                cwd=str(sc.notebook.parent),
                **engine_kwargs,
            )
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one paragraph
            failure = exc
        else:
            failure = None
    if failure is not None:
        return result(False, error=_describe_failure(sc, failure, executed, log_path, kname))
    try:
        metrics = check_metrics(sc, out)
    except LabkitError as exc:
        return result(False, error=f"scenario {sc.name!r} failed: {exc}")
    return result(True, metrics=metrics)


def _kernel_config() -> Any:
    """Encrypt the kernel's ZeroMQ channels (CurveZMQ) when this jupyter_client and pyzmq can.

    Newer ipykernels warn on every start when a kernel talks plain TCP; with keys
    provisioned by the kernel manager the channels are encrypted and the warning goes.
    Older jupyter_client versions lack the setting and keep the plain transport.
    """
    try:
        import zmq
        from jupyter_client.manager import KernelManager
        from traitlets.config import Config
    except ImportError:  # pragma: no cover - papermill depends on all three
        return None
    if "transport_encryption" not in KernelManager.class_trait_names() or not zmq.has("curve"):
        return None
    config = Config()
    config.KernelManager.transport_encryption = "auto"
    return config


def _kernel_manager_class(log_file: Any) -> Any:
    """A kernel manager whose kernel process writes its stdout/stderr to ``log_file``.

    The kernel's own output (start-up warnings, its log, tracebacks when it is shut down
    mid-cell after a timeout) is not the notebook's output -- that travels over ZeroMQ --
    and belongs in the run's log, not on the terminal of someone running ``labkit run``.
    """
    try:
        from jupyter_client.manager import AsyncKernelManager
    except ImportError:  # pragma: no cover - papermill depends on it
        return None
    if not hasattr(AsyncKernelManager, "_async_launch_kernel"):  # pragma: no cover - jupyter_client < 7
        return None

    class RunLogKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["stdout"] = log_file
            kw["stderr"] = log_file
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return RunLogKernelManager


@contextlib.contextmanager
def _papermill_log_to(path: Path) -> Iterator[None]:
    """Send papermill's (and nbclient's) log records to ``path`` instead of stderr while running."""
    logger = logging.getLogger("papermill")
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _check_notebook(sc: Scenario) -> None:
    """The notebook must be readable and have a cell tagged ``parameters``."""
    import nbformat

    try:
        nb = nbformat.read(str(sc.notebook), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several types
        raise LabkitError(f"not a readable notebook: {_one_line(exc, 200)}", file=display_path(sc.notebook)) from None
    if not any("parameters" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells):
        raise LabkitError(
            "has no cell tagged 'parameters' (papermill injects seed, cluster, out_dir after it)",
            file=display_path(sc.notebook),
        )


def run_all(
    scenarios: Iterable[Scenario],
    out_root: str | Path = "reports",
    *,
    seed: int = 0,
    cluster: str = "sim",
    kernel: str | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    on_start: Callable[[Scenario], None] | None = None,
    on_done: Callable[[Scenario, RunResult], None] | None = None,
) -> list[RunResult]:
    """Run each scenario with its defaults into ``<out_root>/<name>/``; results in the given order.

    ``jobs`` 1 runs them one after another, in order.  More runs up to ``jobs`` at a
    time, each in its own worker process (:mod:`labkit.app.parallel`), longest first;
    ``on_start``/``on_done`` are then called in this process as each one starts and
    finishes, and the results still come back in the given order.
    """
    from labkit.scenarios.backend import kind_of, provision

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise LabkitError(f"expects a whole number of 1 or more, got {jobs!r}", field="--jobs")
    scenarios = list(scenarios)
    if not isinstance(cluster, str) or not any(kind_of(cluster) in sc.clusters for sc in scenarios if sc.clusters):
        # nothing will use a real cluster (sim, or every scenario refuses it): start nothing
        return _run_each(scenarios, Path(out_root), seed, cluster, kernel, timeout, jobs, on_start, on_done)
    with provision(cluster) as target:  # one temporary control plane (if any) for all of them
        return _run_each(scenarios, Path(out_root), seed, target, kernel, timeout, jobs, on_start, on_done)


def run_in_batch(sc: Scenario, root: Path, seed: int, cluster: str, kernel: str | None,
                 timeout: float | None) -> RunResult:
    """One scenario of ``run --all`` into ``root/<name>``; a ``LabkitError`` becomes a failed result."""
    try:
        return run_scenario(sc, seed=seed, cluster=cluster, out_dir=root / sc.name, kernel=kernel, timeout=timeout)
    except LabkitError as exc:  # e.g. a scenario that does not run on this cluster: report it, run the rest
        return _not_run(sc, root, cluster, str(exc))


def _not_run(sc: Scenario, root: Path, cluster: str, error: str) -> RunResult:
    out = (root / sc.name).resolve()
    return RunResult(sc.name, False, out, out / f"{sc.name}.ipynb", {"cluster": cluster}, 0.0, error=error)


def _run_each(scenarios: list[Scenario], root: Path, seed: int, cluster: str, kernel: str | None,
              timeout: float | None, jobs: int, on_start: Callable[[Scenario], None] | None,
              on_done: Callable[[Scenario, RunResult], None] | None) -> list[RunResult]:
    if jobs > 1 and len(scenarios) > 1:
        from labkit.app.parallel import run_parallel

        run = functools.partial(run_in_batch, root=root.resolve(), seed=seed, cluster=cluster, kernel=kernel,
                                timeout=timeout)
        return run_parallel(scenarios, run, jobs, on_start=on_start, on_done=on_done,
                            lost=lambda sc, why: _not_run(sc, root, cluster, f"scenario {sc.name!r} failed: {why}"))
    results = []
    for sc in scenarios:
        if on_start:
            on_start(sc)
        res = run_in_batch(sc, root, seed, cluster, kernel, timeout)
        results.append(res)
        if on_done:
            on_done(sc, res)
    return results


def metrics_json(metrics: Mapping[str, Any]) -> str:
    return json.dumps(metrics, indent=2)
