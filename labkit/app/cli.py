"""The ``labkit`` command.

    labkit scenarios [NAME]                 list scenarios, or show one's parameters and metrics
    labkit run NAME [--param k=v]... [--seed N] [--cluster sim|kwok|kind|CONTEXT] [--out DIR] [--json]
    labkit run --all [--out DIR] [--jobs N]  every scenario into DIR/<name>/ (default reports/), N at a time
    labkit try PATH_OR_GIT_URL [...]        reconcile your own manifest repo in the simulator (labkit.tryrepo.cli)
    labkit lab [--workspace DIR] [JUPYTER ARGS...]   JupyterLab in notebooks/ (or a workshop workspace)
    labkit bench [--only NAME]... [--quick] [--json]   every benchmarks/bench_*.py, one table (labkit.app.bench)

Exit codes: 0 ok; 1 a scenario failed (its notebook raised, or its metrics were not
what the YAML declares); 2 bad input (``labkit: error: <message>`` on stderr, as
argparse does for bad options, or ``labkit: error: <file>: <reason>`` for a path the
system refused — too long, not a directory, unreadable); 130 interrupted.  Users never
see a traceback for an input error or a failing notebook; an unexpected internal error
prints one line (exit 70), and ``LABKIT_DEBUG=1`` shows its traceback.  Every error line
is one line: text from the input (file names, object names) has its control characters
escaped (``labkit.core.textsafe.one_line``) and is shortened in the middle when very long.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from labkit.core.errors import LabkitError
from labkit.core.textsafe import one_line

PROG = "labkit"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("labkit")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A notebook-first GitOps simulation lab: run the scenario notebooks headless, or open them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("scenarios", help="list the scenarios (or show one's parameters and metrics)")
    p.add_argument("name", nargs="?", help="a scenario to describe")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser(
        "run",
        help="execute a scenario's notebook headless (papermill)",
        description=(
            "Execute a scenario's notebook headless. Writes the executed notebook, metrics.json "
            "and figures to --out (default reports/NAME, or reports/ with one folder per scenario for --all)."
        ),
    )
    p.add_argument("name", nargs="?", help="the scenario (see `labkit scenarios`)")
    p.add_argument("--all", action="store_true", help="run every scenario with its defaults")
    p.add_argument(
        "--param", "-p", action="append", default=[], metavar="K=V", help="set a scenario parameter (repeatable)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the run (default 0)")
    p.add_argument(
        "--cluster", default="sim", metavar="sim|kwok|kind|CONTEXT",
        help="where to reconcile: the embedded simulator (default), a provisioned cluster, or a kube context",
    )
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("--json", action="store_true", help="print metrics.json to stdout (nothing else)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="fail a cell that runs longer than this")
    p.add_argument("--kernel", metavar="NAME", help="Jupyter kernel to execute with (default: $LABKIT_KERNEL or python3)")
    p.add_argument(
        "--jobs", "-j", metavar="N",
        help=f"with --all: run N notebooks at a time, each in its own process, longest first "
             f"(default: the number of cores, {os.cpu_count() or 1}; 1 runs them one after another)",
    )
    p.set_defaults(func=cmd_run)

    from labkit.tryrepo.cli import add_parser as add_try_parser  # `labkit try` (labkit.tryrepo)

    add_try_parser(sub)

    from labkit.workshop.cli import add_parsers as add_workshop_parsers  # exercises, workshop, check, solve, hint

    add_workshop_parsers(sub)

    p = sub.add_parser("lab", help="open JupyterLab in the notebooks folder (or a workshop workspace)")
    p.add_argument("--workspace", metavar="DIR", help="open a workshop workspace (`labkit workshop start DIR`): its "
                                                      "notebooks/ and fleet/; check(\"ID\") in its notebooks finds it")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed to jupyter lab")
    p.set_defaults(func=cmd_lab)
    add_cluster_commands(sub)
    add_bench_command(sub)
    return parser


# ------------------------------------------------------------------ output helpers

def _consoles() -> tuple[Any, Any]:
    from rich.console import Console

    return Console(), Console(stderr=True)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _error_text(exc: LabkitError) -> str:
    """``FILE: FIELD: message`` on one line, escaped; a very long file name is shortened in the middle."""
    if exc.file is None and exc.field is None:
        return one_line(exc)
    parts = [one_line(exc.file, 400)] if exc.file else []
    if exc.field:
        parts.append(one_line(exc.field, 200))
    parts.append(one_line(exc.detail))
    return ": ".join(parts)


# ------------------------------------------------------------------ commands

def cmd_scenarios(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from labkit.scenarios import spec as sc_mod

    out, _ = _consoles()
    if args.name:
        sc = sc_mod.get(args.name)
        out.print(Text(f"{sc.name}: {sc.title}", style="bold"))
        out.print(Text(sc.summary))
        out.print(Text(f"notebook: {sc.notebook_rel}    file: {sc.display_file}"))
        params = Table("parameter", "type", "default", "help", title="parameters (--param K=V)", title_justify="left")
        for p in sc.parameters.values():
            extra = []
            if p.choices is not None:
                extra.append("choices: " + ", ".join(map(str, p.choices)))
            if p.min is not None:
                extra.append(f"min {p.min}")
            if p.max is not None:
                extra.append(f"max {p.max}")
            help_text = p.help + (f" ({'; '.join(extra)})" if extra else "")
            params.add_row(Text(p.name), Text(p.describe_type()), Text(repr(p.default)), Text(help_text))
        params.add_row(Text("seed"), Text("int"), Text("0"), Text("random seed (--seed)"))
        runs_on = " | ".join({"context": "kube context"}.get(k, k) for k in sc.clusters)
        params.add_row(Text("cluster"), Text("str"), Text("'sim'"), Text(f"{runs_on} (--cluster)"
                                                                        + (f"; {sc.real_note}" if sc.real_note else "")))
        out.print(params)
        metrics = Table("metric", "meaning", title="metrics.json", title_justify="left")
        for key, desc in sc.metrics.items():
            metrics.add_row(Text(key), Text(desc))
        out.print(metrics)
        return 0
    scenarios = sc_mod.load_all()
    table = Table("name", "title")
    for sc in scenarios:
        table.add_row(Text(sc.name), Text(sc.title))
    out.print(table)
    if not scenarios:
        _err(f"no scenarios in {sc_mod.display_path(sc_mod.scenarios_dir())}")
    return 0


def _run_one(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from labkit.app import runner
    from labkit.scenarios import spec as sc_mod

    out, err = _consoles()
    sc = sc_mod.get(args.name)
    params = sc.resolve_params(args.param, cluster=args.cluster)  # fail fast (and on a cluster it cannot use)
    out_dir = Path(args.out) if args.out else Path("reports") / sc.name
    with err.status(f"running {sc.name} ({sc.notebook_rel}) ...", spinner="dots"):
        res = runner.run_scenario(
            sc, params, seed=args.seed, cluster=args.cluster, out_dir=out_dir, kernel=args.kernel, timeout=args.timeout
        )
    if not res.ok:
        _err(res.error or f"scenario {sc.name!r} failed")
        return 1
    if args.json:
        print(runner.metrics_json(res.metrics or {}))
        return 0
    out.print(Text(f"{sc.name}: ok in {res.duration_s:.1f} s", style="bold green"))
    out.print(Text(f"  executed notebook  {sc_mod.display_path(res.notebook)}"))
    out.print(Text(f"  metrics            {sc_mod.display_path(res.out_dir / 'metrics.json')}"))
    for fig in res.figures:
        out.print(Text(f"  figure             {sc_mod.display_path(fig)}"))
    table = Table("metric", "value", "meaning")
    for key, value in (res.metrics or {}).items():
        table.add_row(Text(key), Text(str(value)), Text(sc.metrics.get(key, "")))
    out.print(table)
    return 0


def _run_all(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    from labkit.app import runner
    from labkit.scenarios import spec as sc_mod

    if args.param:
        raise LabkitError("--param applies to one scenario; `run --all` uses every scenario's defaults", field="--param")
    jobs = _jobs(args.jobs)
    out, err = _consoles()
    scenarios = sc_mod.load_all()  # a malformed scenario file stops everything, before anything runs
    if not scenarios:
        raise LabkitError("no scenarios to run", file=sc_mod.display_path(sc_mod.scenarios_dir()))
    root = Path(args.out) if args.out else Path("reports")
    results: list[runner.RunResult] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("scenarios", total=len(scenarios))
        running: list[str] = []

        def show_running() -> None:
            progress.update(task, description=f"running {', '.join(running)}" if running else "scenarios")

        def on_start(sc: sc_mod.Scenario) -> None:
            running.append(sc.name)
            show_running()

        def on_done(sc: sc_mod.Scenario, res: runner.RunResult) -> None:
            running.remove(sc.name)
            mark = Text("ok  ", style="green") if res.ok else Text("FAIL", style="bold red")
            progress.console.print(Text.assemble(mark, f" {sc.name} ({res.duration_s:.1f} s)"))
            progress.advance(task)
            show_running()

        results = runner.run_all(
            scenarios, root, seed=args.seed, cluster=args.cluster, kernel=args.kernel,
            timeout=args.timeout, jobs=jobs, on_start=on_start, on_done=on_done,
        )
        progress.update(task, description="done")

    if args.json:
        print(runner.metrics_json({r.scenario: r.metrics for r in results}))
    else:
        table = Table("scenario", "status", "time", "report", title="labkit run --all", title_justify="left")
        for r in results:
            status = Text("ok", style="green") if r.ok else Text("failed", style="bold red")
            table.add_row(Text(r.scenario), status, Text(f"{r.duration_s:.1f} s"), Text(sc_mod.display_path(r.out_dir)))
        out.print(table)
    failed = [r for r in results if not r.ok]
    for r in failed:
        _err(r.error or f"scenario {r.scenario!r} failed")
    if not args.json:
        ok = len(results) - len(failed)
        print(f"{ok} of {len(results)} scenarios succeeded; reports are in {sc_mod.display_path(root.resolve())}/")
    return 1 if failed else 0


def _jobs(text: str | None) -> int:
    """``--jobs``: a whole number of 1 or more; the number of cores when not given."""
    if text is None:
        from labkit.app.parallel import default_jobs

        return default_jobs()
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise LabkitError(f"expects a whole number of 1 or more, got {text!r}", field="--jobs")
    return jobs


def cmd_run(args: argparse.Namespace) -> int:
    if args.jobs is not None and not args.all:
        raise LabkitError("applies to `run --all`; one scenario runs in one kernel", field="--jobs")
    if args.all and args.name:
        raise LabkitError("give a scenario NAME or --all, not both")
    if not args.all and not args.name:
        from labkit.scenarios import spec as sc_mod

        known = ", ".join(sc_mod.names()) or "(none)"
        raise LabkitError(f"name a scenario to run, or --all; known scenarios: {known}")
    return _run_all(args) if args.all else _run_one(args)


def _lab_option(args: Sequence[str], *names: str) -> str | None:
    """The value the last of ``--name=value`` / ``--name value`` in ``args`` gives (traitlets: the last one wins)."""
    value = None
    for i, a in enumerate(args):
        for n in names:
            if a.startswith(n + "="):
                value = a[len(n) + 1:]
            elif a == n and i + 1 < len(args):
                value = args[i + 1]
    return value


_PORT_OPTS = ("--port", "--ServerApp.port")
_IP_OPTS = ("--ip", "--ServerApp.ip")
_TOKEN_OPTS = ("--IdentityProvider.token", "--ServerApp.token", "--NotebookApp.token")
START_NOTEBOOK = "00-start-here.ipynb"


def lab_command(extra: Sequence[str] = (), workspace: str | None = None) -> tuple[list[str], Path]:
    """The JupyterLab command line and the folder it starts in.

    The folder is the notebooks folder, or with ``workspace`` a workshop workspace (its
    ``notebooks/`` and ``fleet/`` side by side).  Unless ``extra`` says otherwise the
    server listens on 127.0.0.1 on a free port with a fresh token (so ``cmd_lab`` can
    print the exact URL to open); as root (containers) ``--allow-root`` is added, since
    Jupyter refuses to start as root without it.  ``extra`` comes last: it wins.
    """
    import secrets
    import socket

    from labkit.scenarios import spec as sc_mod

    if workspace is not None:
        from labkit.workshop.workspace import find_workspace

        root = find_workspace(workspace).root
    else:
        root = sc_mod.notebooks_dir()
        if not root.is_dir():
            raise LabkitError("no notebooks folder (set LABKIT_HOME to the labkit checkout)", file=str(root))
    extra = [a for a in extra if a != "--"]
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")
    if _lab_option(extra, *_IP_OPTS) is None:
        cmd.append("--ServerApp.ip=127.0.0.1")
    if _lab_option(extra, *_PORT_OPTS) is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if _lab_option(extra, *_TOKEN_OPTS) is None:
        cmd.append(f"--IdentityProvider.token={secrets.token_hex(24)}")
    return [*cmd, *extra], root


def lab_url(cmd: Sequence[str], root: Path) -> str | None:
    """The URL that opens the start-here notebook in the server ``cmd`` starts (None if it cannot be told)."""
    from urllib.parse import quote

    port = _lab_option(cmd, *_PORT_OPTS)
    if not port or not port.isdigit():
        return None
    ip = _lab_option(cmd, *_IP_OPTS) or "127.0.0.1"
    if ip in ("0.0.0.0", "*", "", "::"):
        ip = "127.0.0.1"
    elif ":" in ip:
        ip = f"[{ip}]"
    token = _lab_option(cmd, *_TOKEN_OPTS)
    start = next((p for p in (root / START_NOTEBOOK, root / "notebooks" / START_NOTEBOOK) if p.is_file()), None)
    path = "lab" + (f"/tree/{quote(start.relative_to(root).as_posix())}" if start else "")
    return f"http://{ip}:{port}/{path}" + (f"?token={quote(token)}" if token else "")


def cmd_lab(args: argparse.Namespace) -> int:
    cmd, root = lab_command(args.jupyter_args, workspace=args.workspace)
    if args.workspace is not None:
        os.environ["LABKIT_WORKSPACE"] = str(root)  # the kernels inherit it: check("ID") finds the workspace
    url = lab_url(cmd, root)
    print(f"labkit lab: JupyterLab in {root}" + (" (running as root: --allow-root added)" if "--allow-root" in cmd
                                                  and "--allow-root" not in args.jupyter_args else ""))
    if url:
        print(f"Open this URL in your browser:\n\n    {url}\n")
    else:
        print("Open the URL JupyterLab prints below.")
    print("Stop it with Ctrl-C (twice).")
    os.chdir(root)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        # become JupyterLab, so Ctrl-C and its shutdown prompt behave as usual
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)  # pragma: no cover - Windows has no real exec


# ------------------------------------------------------------------ labkit cluster (real clusters)

def add_cluster_commands(sub: Any) -> None:
    """``labkit cluster build|create|delete|status``: provision a real cluster (see labkit.kube)."""
    p = sub.add_parser(
        "cluster", help="provision a real cluster: build | create | delete | status",
        description=(
            "Real clusters for labkit. --provider kwok runs a real control plane (etcd, kube-apiserver, "
            "kube-controller-manager, kube-scheduler) and KWOK fake nodes as local processes on 127.0.0.1, "
            "built from source by `labkit cluster build`; --provider kind needs Docker and the kind CLI."
        ),
    )
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION")
    b = csub.add_parser("build", help="build the control plane, KWOK and metrics-server from Go module sources")
    b.add_argument("--component", action="append", metavar="NAME",
                   help="build only this component (repeatable; default: all)")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.set_defaults(func=cmd_cluster_build)
    for action, text in (("create", "start a cluster"), ("delete", "stop a cluster and remove its data"),
                         ("status", "show what runs")):
        c = csub.add_parser(action, help=text)
        c.add_argument("--provider", choices=("kwok", "kind"), default="kwok",
                       help="kwok: local control plane built from source (default); kind: Docker")
        c.add_argument("--name", default="labkit", help="cluster name (default labkit)")
        if action == "create":
            c.add_argument("--nodes", type=int, default=3, help="fake nodes (kwok provider; default 3)")
            c.add_argument("--missing-image", action="append", default=[], metavar="IMAGE",
                           help="an image the fake kubelets fail to pull (kwok provider; repeatable)")
            c.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS",
                           help="give up if the cluster is not ready by then (default 180)")
        c.set_defaults(func=cmd_cluster)

    def cluster_usage(_args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=cluster_usage)


def cmd_cluster_build(args: argparse.Namespace) -> int:
    from labkit.kube import build as kbuild

    components = tuple(args.component) if args.component else kbuild.ALL_COMPONENTS
    report = kbuild.build(components, force=args.force, log=lambda m: print(m, file=sys.stderr))
    where = ", ".join(str(p) for p in kbuild.bin_dirs())
    if all(s.skipped for s in report.steps):
        print(f"up to date: {where}")
    else:
        print(f"built in {report.seconds:.0f} s (peak RSS {report.max_rss_mb:.0f} MiB): {where}")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    import time

    from labkit.kube import controlplane as cp, kind

    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.provider == "kind":
        if args.cluster_command == "create":
            kc = kind.create(args.name, log=say)
            print(f"kind cluster {kc.name!r} ready; kubeconfig {kc.kubeconfig} (context {kc.context})")
            print(f"  export KUBECONFIG={kc.kubeconfig}")
        elif args.cluster_command == "delete":
            kind.delete(args.name, log=say)
            print(f"kind cluster {args.name!r} deleted")
        else:
            present = kind.exists(args.name)
            print(f"kind cluster {args.name!r}: {'running' if present else 'not found'}"
                  + (f"; kubeconfig {kind.kubeconfig_path(args.name)}" if present else ""))
            return 0 if present else 1
        return 0
    if args.cluster_command == "create":
        from labkit.kube.stages import StageOptions

        if args.nodes < 1:
            raise LabkitError("at least one node is needed", field="--nodes")
        state = cp.create(args.name, nodes=args.nodes, stage_options=StageOptions(missing_images=args.missing_image),
                          timeout=args.timeout, log=say)
        print(f"cluster {state.name!r} ready in {state.ready_seconds:.1f} s: {state.server} "
              f"({len(state.nodes)} KWOK nodes, Kubernetes {state.version}, "
              f"{'metrics.k8s.io by metrics-server' if state.metrics else 'no metrics API: metrics-server not built'})")
        print(f"  kubeconfig {state.kubeconfig} (context {state.context})")
        print(f"  export KUBECONFIG={state.kubeconfig}")
        return 0
    if args.cluster_command == "delete":
        t0 = time.monotonic()
        if cp.delete(args.name, log=say):
            print(f"cluster {args.name!r} deleted in {time.monotonic() - t0:.1f} s")
        else:
            print(f"no cluster named {args.name!r}")
        return 0
    st = cp.status(args.name)
    if not st.exists:
        print(f"no cluster named {args.name!r} (create one with `labkit cluster create --name {args.name}`)")
        return 1
    print(f"cluster {st.name!r}: {'running' if st.running else 'NOT running'} ({st.state}); API {st.server} "
          f"{'ready' if st.ready else 'not ready'}; nodes Ready {st.nodes_ready}/{st.nodes}")
    for c in st.components:
        port = f"127.0.0.1:{c.port}" if c.port else "-"
        print(f"  {c.name:<24} pid {c.pid:<8} {'running' if c.running else 'stopped':<8} {port:<16} log {c.log}")
    print(f"  kubeconfig {st.kubeconfig}")
    return 0 if st.running else 1


# ------------------------------------------------------------------ labkit bench

def add_bench_command(sub: Any) -> None:
    """``labkit bench``: run every benchmark script and print one table of figures (see labkit.app.bench)."""
    p = sub.add_parser(
        "bench", help="run every benchmarks/bench_*.py and print one table (figure, value, target)",
        description=(
            "Run each benchmarks/bench_*.py in its own process, one after another, and print one table of "
            "their figures against the project's targets. A missed target is a figure, not a failure: the "
            "exit code is 1 only when a script crashed or hit the time limit. Each script's own output is "
            "echoed to stderr and kept in --log-dir."
        ),
    )
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this benchmark (engine, sim, real, ...; repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="reduced sizes where the scripts support it (figures then carry no targets)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (nothing else)")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="stop a script that runs longer than this (default 1800)")
    p.add_argument("--log-dir", metavar="DIR", help="where each script's output goes (default reports/bench)")
    p.add_argument("--quiet", action="store_true", help="do not echo the scripts' output to stderr")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from rich.text import Text

    from labkit.app import bench
    from labkit.scenarios import spec as sc_mod

    if args.timeout <= 0:
        raise LabkitError("must be positive", field="--timeout")
    scripts = bench.discover(sc_mod.home() / "benchmarks", args.only)
    if not scripts:
        raise LabkitError("no benchmarks/bench_*.py scripts", file=sc_mod.display_path(sc_mod.home() / "benchmarks"))
    out, err = _consoles()
    if not out.is_terminal:  # a file or a pipe: rich would wrap the table at 80 columns
        from rich.console import Console

        out = Console(width=200)
    log_dir = Path(args.log_dir) if args.log_dir else sc_mod.home() / "reports" / "bench"
    load = bench.load_average()
    err.print(Text(f"labkit bench: {len(scripts)} script(s), {os.cpu_count()} cores, load average {load} "
                   f"at the start{'; quick sizes' if args.quick else ''}; output in {sc_mod.display_path(log_dir)}/",
                   style="bold"))

    def on_start(path: Path) -> None:
        err.print(Text(f"== {sc_mod.display_path(path)}", style="bold"))

    def on_done(res: bench.ScriptResult) -> None:
        err.print(Text(f"== {res.script}: {res.status} in {res.seconds:.1f} s", style="bold"))

    results = bench.run_all(scripts, quick_mode=args.quick, timeout=args.timeout, log_dir=log_dir,
                            echo=None if args.quiet else sys.stderr, on_start=on_start, on_done=on_done)
    if args.json:
        print(json.dumps(bench.to_json(results, quick_mode=args.quick), indent=2))
    else:
        bench.render_table(results, out, title=f"labkit bench{' --quick' if args.quick else ''} "
                                               f"({os.cpu_count()} cores; load = 1-min load average per figure)")
        print(bench.summary(results))
    for r in results:
        if r.failed:
            _err(f"benchmark {r.script} {r.status}: {r.reason} (log {r.log})")
    return bench.exit_code(results)


# ------------------------------------------------------------------ entry point

def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if getattr(args, "command", None) != "lab":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.jupyter_args = [*unknown, *args.jupyter_args]  # `labkit lab --no-browser` passes it on
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except LabkitError as exc:
        _err(f"error: {_error_text(exc)}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:  # a path the user or the repository named: too long, not a directory, unreadable ...
        if os.environ.get("LABKIT_DEBUG"):
            raise
        if exc.filename is not None:
            _err(f"error: {one_line(os.fsdecode(exc.filename), 400)}: {one_line(exc.strerror or exc)}")
        else:
            _err(f"error: {one_line(exc)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug in labkit itself: one line unless debugging
        if os.environ.get("LABKIT_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {one_line(exc)} (set LABKIT_DEBUG=1 to see the traceback)")
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
