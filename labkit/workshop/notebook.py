"""The workshop in a notebook: ``check("ID")``, ``hint("ID")`` and ``exercises_table()``.

A participant's notebook calls::

    from labkit.workshop.notebook import check, hint, exercises_table
    exercises_table("hpa-conflict")      # what to do: id, title, goal, task, minutes (an estimate)
    check("hpa-flux-ignore")             # the same verdict as `labkit check hpa-flux-ignore`, as HTML
    hint("hpa-flux-ignore")              # the next hint, one at a time

``check`` judges exactly what ``labkit check ID`` judges (``labkit.workshop.registry.check``:
the participant's commits replayed into the simulator) and returns a ``NotebookVerdict``,
which Jupyter displays as a box — solved or not yet, what was observed against the goal,
notes (uncommitted changes), and one hint when not solved — and which a cell can also
test (``check("ID").solved``).  Every piece of text in it is HTML-escaped: verdicts quote
the participant's own file names, commit messages and YAML errors.

The workspace is ``workspace`` when given (a path or a ``Workspace``), else
``$LABKIT_WORKSPACE`` (``labkit lab --workspace DIR`` sets it for the kernel), else the
notebook's folder or one above it — a workspace's ``notebooks/`` sits inside it.  Outside
a workspace the box says how to make one, instead of raising: a notebook cell never ends
in a traceback for a usage mistake.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

from labkit.core.errors import LabkitError

__all__ = ["NotebookVerdict", "check", "hint", "exercises_table", "verdict_html", "HTMLBlock"]

_SOLVED, _NOT_YET, _PROBLEM = "#1a7f37", "#bf8700", "#cf222e"
_BOX = ("border-left:6px solid {color};padding:8px 12px;margin:6px 0;background:#f6f8fa;"
        "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.45")
#: Hints shown per exercise when there is no workspace (kept for the kernel's lifetime).
_hints_without_workspace: dict[str, int] = {}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _rich(text: Any) -> str:
    """Escaped text with `backticks` shown as code (verdicts and hints quote file names and commands so)."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", _e(text))


@dataclass
class HTMLBlock:
    """A piece of HTML a cell displays (``_repr_html_``), with a plain-text form for headless runs."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def _problem(title: str, message: str, how: str = "") -> HTMLBlock:
    body = f"<b>{_e(title)}</b><br>{_e(message)}"
    if how:
        body += f"<br><span style='color:#57606a'>{how}</span>"
    return HTMLBlock(f"<div class='labkit-problem' style=\"{_BOX.format(color=_PROBLEM)}\">{body}</div>",
                     f"{title}: {message}")


_NO_WORKSPACE_HOW = ("Create your own workspace in a terminal — <code>labkit workshop start ~/gitops-workshop</code> — "
                     "then open it with <code>labkit lab --workspace ~/gitops-workshop</code> and use the notebooks "
                     "in its <code>notebooks/</code> folder.")


def _workspace(workspace: Any) -> Any:
    from labkit.workshop.workspace import Workspace, find_workspace

    if isinstance(workspace, Workspace):
        return workspace
    return find_workspace(os.fspath(workspace) if workspace is not None else None)


# ------------------------------------------------------------------ check


class NotebookVerdict:
    """A ``Verdict`` that Jupyter shows as HTML; ``solved``, ``observed``, ``hint`` and ``verdict`` for code."""

    def __init__(self, verdict: Any, goal: str = "", title: str = ""):
        self.verdict = verdict
        self.goal = goal
        self.title = title

    @property
    def solved(self) -> bool:
        return bool(self.verdict.solved)

    @property
    def observed(self) -> str:
        return self.verdict.observed

    @property
    def hint(self) -> str:
        return self.verdict.hint

    def __bool__(self) -> bool:
        return self.solved

    def _repr_html_(self) -> str:
        return verdict_html(self.verdict, goal=self.goal, title=self.title)

    def __repr__(self) -> str:
        return self.verdict.text()


def verdict_html(verdict: Any, *, goal: str = "", title: str = "") -> str:
    """The HTML box for a ``Verdict`` (every text escaped)."""
    solved = bool(verdict.solved)
    color = _SOLVED if solved else _NOT_YET
    head = "&#10004; solved" if solved else "&#10007; not yet"
    word = "SOLVED" if solved else "NOT YET"
    rows = [f"<div style='font-size:1.05em'><b>{_e(verdict.exercise)}</b>"
            f"{' — ' + _e(title) if title else ''}: <b style='color:{color}' title='{word}'>{head}</b></div>"]
    if goal:
        rows.append(f"<div><b>goal</b>: {_e(goal)}</div>")
    rows.append(f"<div class='labkit-observed'><b>observed</b>: {_rich(verdict.observed)}</div>")
    rows += [f"<div><b>note</b>: {_rich(n)}</div>" for n in verdict.notes]
    if not solved and verdict.hint:
        rows.append(f"<div class='labkit-hint'><b>hint</b> {_rich(verdict.hint)}</div>")
    if not solved:
        rows.append("<div style='color:#57606a'>Change the files, <code>git commit</code>, and run the check "
                    "again. <code>hint(&quot;" + _e(verdict.exercise) + "&quot;)</code> gives the next hint.</div>")
    return (f"<div class='labkit-verdict' data-exercise='{_e(verdict.exercise)}' "
            f"data-solved='{str(solved).lower()}' style=\"{_BOX.format(color=color)}\">{''.join(rows)}</div>")


def check(ex_id: str, workspace: Any = None) -> NotebookVerdict | HTMLBlock:
    """Judge exercise ``ex_id`` in the workspace, as ``labkit check ID`` does; displayed as HTML.

    Returns a ``NotebookVerdict`` (``.solved`` is the exit status of ``labkit check``), or,
    when the id or the workspace is wrong, an ``HTMLBlock`` saying what to do.
    """
    from labkit.workshop import registry

    try:
        ex = registry.get(ex_id)
    except LabkitError as exc:
        return _problem("Unknown exercise", exc.detail, "<code>exercises_table()</code> lists them.")
    try:
        ws = _workspace(workspace)
    except LabkitError as exc:
        return _problem("No workshop workspace", str(exc), _NO_WORKSPACE_HOW)
    try:
        verdict = registry.check(ex_id, ws)
    except LabkitError as exc:
        return _problem(f"{ex_id}: cannot check", str(exc))
    return NotebookVerdict(verdict, goal=ex.goal, title=ex.title)


# ------------------------------------------------------------------ hint


def hint(ex_id: str, workspace: Any = None) -> HTMLBlock:
    """The next hint for ``ex_id`` (one at a time, as ``labkit hint ID``)."""
    from labkit.workshop import registry

    try:
        ex = registry.get(ex_id)
    except LabkitError as exc:
        return _problem("Unknown exercise", exc.detail, "<code>exercises_table()</code> lists them.")
    try:
        ws = _workspace(workspace)
    except LabkitError:
        ws = None
    if ws is not None:
        text = registry.hint(ex_id, ws)
    elif ex.hints:  # no workspace: count in the kernel
        n = min(_hints_without_workspace.get(ex_id, 0) + 1, len(ex.hints))
        _hints_without_workspace[ex_id] = n
        text = f"({n}/{len(ex.hints)}) {ex.hints[n - 1]}"
    else:
        text = ""
    if not text:
        text = f"{ex_id}: no hints"
    return HTMLBlock(f"<div class='labkit-hint' style=\"{_BOX.format(color='#0969da')}\"><b>hint for "
                     f"{_e(ex_id)}</b> {_rich(text)}</div>", text)


# ------------------------------------------------------------------ the list


def exercises_table(scenario: str | None = None, *, ids: Iterable[str] | None = None) -> HTMLBlock:
    """The exercises (of one scenario, or all; or only ``ids``): id, scenario, title, goal, task, minutes (estimate)."""
    from labkit.workshop import registry

    try:
        items = registry.exercises(scenario)
    except LabkitError as exc:
        return _problem("No exercises", exc.detail)
    if ids is not None:
        wanted = list(ids)
        items = [e for e in items if e.id in wanted]
        if not items:
            return _problem("No exercises", f"none of {', '.join(wanted)} is an exercise (see `labkit exercises`)")
    rows = []
    lines = []
    td = "style='text-align:left;vertical-align:top;padding:4px 8px'"
    for ex in items:
        rows.append(f"<tr><td {td}><code>{_e(ex.id)}</code></td><td {td}>{_e(ex.scenario)}</td><td {td}>"
                    f"<b>{_e(ex.title)}</b><br>{_rich(ex.goal)}<br><span style='color:#57606a'>{_rich(ex.task)}</span>"
                    f"</td><td style='text-align:right;vertical-align:top;padding:4px 8px'>~{ex.minutes}</td></tr>")
        lines.append(f"{ex.id} ({ex.scenario}, ~{ex.minutes} min): {ex.title} — {ex.goal}")
    th = "style='text-align:left;padding:4px 8px'"
    head = (f"<tr><th {th}>id</th><th {th}>scenario</th><th {th}>title, goal and what to do</th>"
            "<th style='text-align:right;padding:4px 8px'>minutes*</th></tr>")
    foot = ("<div style='color:#57606a;font-size:0.9em'>* minutes are an estimate of a participant's time, not a "
            "measurement. Check an answer with <code>check(&quot;ID&quot;)</code> here or "
            "<code>labkit check ID</code> in a terminal.</div>")
    table = (f"<table class='labkit-exercises' style='border-collapse:collapse'>{head}{''.join(rows)}</table>{foot}")
    return HTMLBlock(table, "\n".join(lines))
