"""``labkit exercises``, ``labkit workshop start``, ``labkit check``, ``labkit solve``, ``labkit hint``.

    labkit exercises [SCENARIO] [--json]        id, scenario, title, goal (and task, minutes)
    labkit workshop start DIR                   a participant workspace: fleet/ repository + notebooks/
    labkit check ID [--workspace DIR] [--json]  exit 0 when solved, 1 when not (observed vs goal, one hint)
    labkit solve ID [--workspace DIR]           commit the reference solution (facilitators, CI)
    labkit hint ID [--workspace DIR]            the next hint, one at a time

The workspace defaults to ``$LABKIT_WORKSPACE``, else the current folder or one above it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("exercises", help="list the workshop exercises (id, scenario, title, goal)")
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", help="only this scenario's exercises")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_exercises)

    p = sub.add_parser("workshop", help="participant workspaces: `labkit workshop start DIR`")
    wsub = p.add_subparsers(dest="workshop_command", metavar="ACTION", required=True)
    s = wsub.add_parser("start", help="create a participant workspace (its own fleet repository, notebook copies)")
    s.add_argument("dir", metavar="DIR", help="a new or empty folder")
    s.set_defaults(func=cmd_workshop_start)

    for name, text, fn in (("check", "judge an exercise from the simulation: exit 0 solved, 1 not yet", cmd_check),
                           ("solve", "commit an exercise's reference solution into the workspace", cmd_solve),
                           ("hint", "show the next hint for an exercise", cmd_hint)):
        c = sub.add_parser(name, help=text)
        c.add_argument("id", metavar="ID", help="an exercise id (see `labkit exercises`)")
        c.add_argument("--workspace", metavar="DIR", help="the workspace (default: $LABKIT_WORKSPACE or the "
                                                          "current folder)")
        if name == "check":
            c.add_argument("--json", action="store_true", help="print the verdict as JSON")
        c.set_defaults(func=fn)


def cmd_exercises(args: argparse.Namespace) -> int:
    from labkit.workshop import exercises

    items = exercises(args.scenario)
    if args.json:
        print(json.dumps([e.summary() for e in items], indent=2))
        return 0
    width = max(len(e.id) for e in items)
    for e in items:
        print(f"{e.id:<{width}}  {e.scenario:<15} {e.title}  (~{e.minutes} min)")
        print(f"{'':<{width}}  goal: {e.goal}")
    return 0


def cmd_workshop_start(args: argparse.Namespace) -> int:
    from labkit.scenarios.spec import notebooks_dir
    from labkit.workshop import start_workspace

    ws = start_workspace(args.dir, notebooks=notebooks_dir())
    readme = ws.root / "README.md"
    readme.write_text(_readme(ws.root), encoding="utf-8")
    print(f"Workspace ready: {ws.root}")
    print(f"  fleet repository (yours; one folder per exercise): {ws.fleet}")
    print(f"  notebooks: {ws.notebooks}")
    print("Open it:")
    print(f"  labkit lab --workspace {ws.root}      # JupyterLab; start with notebooks/00-start-here.ipynb")
    print("Then, for each exercise: edit files under fleet/<id>/, `git commit`, and")
    print(f"  labkit check <id> --workspace {ws.root}")
    return 0


def _readme(root: Path) -> str:
    return (
        "# Your labkit workshop workspace\n\n"
        "- `fleet/` is your own git repository, one folder per exercise. Edit the files, then commit:\n"
        "  `cd fleet && git add -A && git commit -m 'what I changed'`. GitOps only sees commits.\n"
        "- `labkit exercises` lists the exercises and their goals.\n"
        "- `labkit check ID` replays your commits in the simulator and says whether the goal is met, what it\n"
        "  observed, and one hint. `labkit hint ID` gives the next hint.\n"
        "- `notebooks/` holds your copies of the scenario notebooks; start with `00-start-here.ipynb`.\n"
        f"\nWorkspace: {root}\n")


def _workspace(args: argparse.Namespace) -> Any:
    from labkit.workshop import find_workspace

    return find_workspace(args.workspace)


def cmd_check(args: argparse.Namespace) -> int:
    from labkit.workshop import check

    verdict = check(args.id, _workspace(args))
    print(json.dumps(verdict.to_dict(), indent=2) if args.json else verdict.text())
    return 0 if verdict.solved else 1


def cmd_solve(args: argparse.Namespace) -> int:
    from labkit.workshop import solve

    sha = solve(args.id, _workspace(args))
    print(f"{args.id}: reference solution committed ({sha[:12]}); `labkit check {args.id}` to see it pass")
    return 0


def cmd_hint(args: argparse.Namespace) -> int:
    from labkit.workshop import hint

    text = hint(args.id, _workspace(args))
    print(text or f"{args.id}: no hints")
    return 0
