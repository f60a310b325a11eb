"""Every exercise, collected from ``labkit.workshop.catalog``, and the operations on them.

``exercises(scenario=None)`` lists them in catalogue order; ``get(id)`` finds
one (a ``LabkitError`` naming the id otherwise).  ``check``, ``solve``,
``hint`` and ``start_workspace`` are what the CLI (``labkit exercises`` /
``workshop start`` / ``check`` / ``solve`` / ``hint``) and the notebooks'
``check("ID")`` call.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from labkit.core.errors import LabkitError
from labkit.workshop.model import Exercise, History, Verdict
from labkit.workshop.workspace import Workspace

__all__ = ["MODULES", "exercises", "get", "check", "judge_history", "solve", "hint", "start_workspace"]

#: One module per scenario, in the order a workshop meets them.
MODULES = ("tour", "promotion", "drift", "hpa_conflict", "rollback", "secrets", "migrations", "stateful_edges",
           "push_vs_pull", "fleet")

_cache: list[Exercise] | None = None


def exercises(scenario: str | None = None) -> list[Exercise]:
    global _cache
    if _cache is None:
        found: list[Exercise] = []
        for name in MODULES:
            try:
                mod = importlib.import_module(f"labkit.workshop.catalog.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"labkit.workshop.catalog.{name}":
                    continue  # that scenario has no exercises (yet)
                raise
            found.extend(mod.EXERCISES)
        ids = [e.id for e in found]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise RuntimeError(f"duplicate exercise ids: {sorted(dupes)}")
        _cache = found
    if scenario is None:
        return list(_cache)
    out = [e for e in _cache if e.scenario == scenario]
    if not out:
        known = sorted({e.scenario for e in _cache})
        raise LabkitError(f"no exercises for scenario {scenario!r}; scenarios with exercises: {', '.join(known)}",
                          field="SCENARIO")
    return out


def get(ex_id: str) -> Exercise:
    for e in exercises():
        if e.id == ex_id:
            return e
    raise LabkitError(f"no exercise {ex_id!r} (see `labkit exercises`)", field="ID")


def start_workspace(root: str | Path, notebooks: Path | None = None) -> Workspace:
    return Workspace.create(root, {e.id: e.start() for e in exercises()}, notebooks=notebooks)


def judge_history(ex: Exercise, history: History) -> Verdict:
    """The verdict on a history (no workspace needed: the tests and the notebooks' explorers use this)."""
    verdict = ex.judge(history)
    if history.uncommitted:
        verdict.notes.append("uncommitted changes (a GitOps controller only sees commits): "
                             + ", ".join(history.uncommitted[:5]))
    return verdict


def check(ex_id: str, ws: Workspace) -> Verdict:
    """Judge the participant's commits for ``ex_id``; when not solved, the verdict carries the current hint.

    A check never advances the hints: it repeats the latest one shown (the first, the first time);
    only ``hint`` (``labkit hint ID``) reveals the next, so the last — often the answer — stays hidden
    until asked for.
    """
    ex = get(ex_id)
    if not ws.folder(ex_id).is_dir():
        raise LabkitError(f"the workspace has no folder for {ex_id}", file=str(ws.folder(ex_id)))
    verdict = judge_history(ex, ws.history(ex_id))
    if not verdict.solved and not verdict.hint and ex.hints:
        shown = ws.hints_shown(ex_id) or ws.show_hint(ex_id)
        n = min(shown, len(ex.hints))
        verdict.hint = f"({n}/{len(ex.hints)}) {ex.hints[n - 1]}"
        if n < len(ex.hints):
            verdict.hint += f"  [`labkit hint {ex_id}` for the next]"
    return verdict


def hint(ex_id: str, ws: Workspace) -> str:
    """The next hint for ``ex_id`` (one at a time; the last one repeats)."""
    ex = get(ex_id)
    if not ex.hints:
        return ""
    n = ws.show_hint(ex_id)
    return f"({min(n, len(ex.hints))}/{len(ex.hints)}) {ex.hints[min(n, len(ex.hints)) - 1]}"


def solve(ex_id: str, ws: Workspace) -> str:
    """Commit the reference solution into the workspace (for facilitators and CI); returns the last commit."""
    ex = get(ex_id)
    change = ex.solution
    sha = ""
    while change is not None:
        sha = ws.commit(ex_id, change.edit(ws.files(ex_id)), change.message, author="facilitator")
        change = change.then
    return sha
