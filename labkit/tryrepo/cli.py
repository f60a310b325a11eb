"""The ``labkit try`` subcommand: arguments, and what goes to stdout, stderr and ``--out``.

``labkit try PATH_OR_GIT_URL [--path SUBDIR]... [--dialect flux|argo] [--ref REV] [--history N]
[--missing-image REF]... [--seed N] [--out DIR] [--json] [--strict]``

* the terminal report (``labkit.tryrepo.report.print_report``) goes to stdout,
  unless ``--json``, which prints exactly one JSON document (schema
  ``labkit.try/v1``, see ``labkit.tryrepo.model``) and nothing else;
* ``--out DIR`` writes ``report.html`` (figures embedded), ``report.json`` and
  the figures as PNG files;
* exit codes: 0 when the analysis ran (whatever it found); with ``--strict``,
  1 when a unit failed or an ``error`` pitfall was found; 2 for bad input
  (printed by ``labkit.app.cli.main`` as one ``labkit: error: <file>: <field>:
  <message>`` line, no traceback);
* every file left out of the snapshot (a symlink leading outside the
  repository, a FIFO, a device, a file too large, a name git fsck rejects) is
  one ``labkit: warning: <path>: <reason>`` line on stderr (not with
  ``--json``; the report's notes list them too);
* SIGTERM and SIGHUP end the run as Ctrl-C does (exit 143 / 129 / 130), after
  the temporary snapshot has been removed.
"""
from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "cmd_try"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``try`` on an ``argparse`` sub-parsers object."""
    p = sub.add_parser(
        "try",
        help="reconcile your own manifest repository in the simulator and report its GitOps pitfalls",
        description=(
            "Reconcile a local manifest repository (a directory, a git work tree or a file:// URL) with the Flux "
            "or Argo CD dialect in a fresh simulated cluster, and report per object and per Kustomization / "
            "Application what happened, the apply order, and GitOps pitfalls with file, line and fix."),
    )
    p.add_argument("target", metavar="PATH_OR_GIT_URL", help="the repository root (paths in Flux/Argo objects are "
                                                              "relative to it)")
    p.add_argument("--path", action="append", default=[], metavar="SUBDIR",
                   help="reconcile this directory as `flux bootstrap --path` would (repeatable); default: discover")
    p.add_argument("--dialect", choices=("flux", "argo"),
                   help="reconcile only this dialect's objects; for plain kustomize directories, the dialect to use "
                        "(default flux)")
    p.add_argument("--ref", metavar="REV", help="a branch, tag or commit to reconcile instead of the working tree")
    p.add_argument("--history", type=int, default=5, metavar="N",
                   help="commits of history to check (StatefulSet volumeClaimTemplates, secrets); 0 disables "
                        "(default 5)")
    p.add_argument("--missing-image", action="append", default=[], metavar="REF",
                   help="an image reference that does not exist in the registry (repeatable; without a tag the "
                        "whole repository is missing); every other image is assumed pullable")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default 0)")
    p.add_argument("--out", metavar="DIR", help="write report.html, report.json and figures here")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout (nothing else)")
    p.add_argument("--allow-remote", action="store_true",
                   help="let kustomize fetch remote bases and resources (http(s), git) over the network, with a "
                        "timeout and size limit; without it they are refused and nothing reaches the network")
    p.add_argument("--strict", action="store_true", help="exit 1 when a unit failed or an error pitfall was found")
    p.set_defaults(func=cmd_try)
    return p


#: How many ``labkit: warning:`` lines a run prints for files left out of the snapshot (then a count).
MAX_WARNINGS = 200


def cmd_try(args: argparse.Namespace) -> int:
    """``labkit try``; SIGTERM and SIGHUP end it like Ctrl-C does, so the snapshot is removed on every exit."""
    restore = _exit_on_termination()
    try:
        return _cmd_try(args)
    finally:
        restore()


def _exit_on_termination() -> Callable[[], None]:
    """Turn SIGTERM / SIGHUP into ``SystemExit(128 + signal)`` so ``finally`` blocks (the temp snapshot's cleanup)
    run, as they do for SIGINT's ``KeyboardInterrupt``; a repeated signal is ignored while cleaning up.  Returns
    a function restoring the previous handlers (a no-op outside the main thread, where handlers cannot be set).
    """
    def terminate(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)
        _kill_children()
        raise SystemExit(128 + signum)

    def interrupt(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)
        _kill_children()
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, terminate)
        # explicitly: a shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread
        pass

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _kill_children() -> None:
    """Kill this process's child processes (a kustomize or git started from any thread) before cleaning up."""
    import os

    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as fh:
                pids.update(int(p) for p in fh.read().split())
    except OSError:
        return  # not Linux: subprocess.run kills its own child on the way out
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _warn_refusals(refused: Sequence[tuple[str, str]]) -> None:
    """One ``labkit: warning: <path>: <reason>`` line per file left out of the snapshot (paths already escaped)."""
    for path, why in refused[:MAX_WARNINGS]:
        print(f"labkit: warning: {path}: {why}", file=sys.stderr)
    if len(refused) > MAX_WARNINGS:
        print(f"labkit: warning: ... and {len(refused) - MAX_WARNINGS} more file(s) left out of the snapshot",
              file=sys.stderr)


def _cmd_try(args: argparse.Namespace) -> int:
    from labkit.core.textsafe import escape_text, one_line
    from labkit.tryrepo.report import print_report
    from labkit.tryrepo.run import TryOptions, try_repo

    opts = TryOptions(paths=list(args.path), dialect=args.dialect, ref=args.ref, history=args.history,
                      seed=args.seed, missing_images=list(args.missing_image),
                      out=Path(args.out) if args.out else None, allow_remote=bool(args.allow_remote))
    if args.json:
        result = try_repo(args.target, opts)
    else:
        from rich.console import Console
        from rich.markup import escape as markup_escape

        err = Console(stderr=True)
        shown = markup_escape(escape_text(args.target))  # a status line is markup: show the path, not obey it
        with err.status(f"reconciling {shown} in the simulator ...", spinner="dots"):
            result = try_repo(args.target, opts)
    try:
        rep = result.report
        if not args.json:
            _warn_refusals(result.source.refused)
        if args.json:
            print(rep.to_json())
        else:
            print_report(rep)
            for name, path in result.outputs.items():
                print(f"  {name:<14} {one_line(path)}")
        if args.strict:
            s = rep.summary()
            if s["units_failed"] or s["pitfalls_by_severity"]["error"]:
                return 1
        return 0
    finally:
        result.close()
