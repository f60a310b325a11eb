"""``check("ID")`` in a notebook: the verdict of ``labkit check``, as escaped HTML; hints one at a time."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from labkit.workshop import Workspace, exercises_table
from labkit.workshop.registry import exercises
from labkit.workshop.model import Verdict
from labkit.workshop.notebook import NotebookVerdict, check, hint, verdict_html


@pytest.fixture
def ws(tmp_path):
    ex = exercises()[0]
    return ex, Workspace.create(tmp_path / "ws", {ex.id: ex.start()})


def test_check_is_the_cli_verdict_as_html(ws, monkeypatch):
    ex, w = ws
    shown = check(ex.id, w.root)
    assert isinstance(shown, NotebookVerdict) and not shown.solved
    html = shown._repr_html_()
    assert "data-solved='false'" in html and "not yet" in html and "observed" in html
    assert "hint" in html and ex.goal.split(" ")[0] in html
    proc = subprocess.run([sys.executable, "-m", "labkit", "check", ex.id, "--workspace", str(w.root), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["observed"] == shown.observed  # the same judge, the same words
    # the workspace comes from $LABKIT_WORKSPACE (what `labkit lab --workspace` sets for the kernel)
    monkeypatch.setenv("LABKIT_WORKSPACE", str(w.root))
    from labkit.workshop import solve

    solve(ex.id, w)
    solved = check(ex.id)
    assert solved.solved and "data-solved='true'" in solved._repr_html_() and "hint" not in solved._repr_html_()


def test_verdict_text_is_escaped():
    v = Verdict("x", False, "file <script>alert(1)</script> & 'quotes'", hint="use <b>", notes=["<img src=x>"])
    html = verdict_html(v, goal="<goal>")
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html and "&lt;goal&gt;" in html


def test_usage_mistakes_are_boxes_not_tracebacks(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    box = check(exercises()[0].id)
    assert "No workshop workspace" in repr(box) and "labkit workshop start" in box._repr_html_()
    assert "Unknown exercise" in repr(check("no-such-exercise"))


def test_hints_one_at_a_time_without_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    ex = exercises()[-1]
    first, second = repr(hint(ex.id)), repr(hint(ex.id))
    assert first.startswith("(1/") and second.startswith("(2/")


def test_exercises_table_lists_every_exercise_with_estimated_minutes():
    table = exercises_table()
    for ex in exercises():
        assert ex.id in table._repr_html_()
    assert "estimate" in table._repr_html_()
    scen = exercises()[0].scenario
    assert all(line.split(" ")[0] in {e.id for e in exercises(scen)} for line in repr(exercises_table(scen)).splitlines())
    assert "No exercises" in repr(exercises_table("no-such-scenario"))


def test_backticks_become_code_after_escaping():
    v = Verdict("x", False, "see `staging/apps.yaml` and <b>", hint="run `git commit`")
    html = verdict_html(v)
    assert "<code>staging/apps.yaml</code>" in html and "<code>git commit</code>" in html and "&lt;b&gt;" in html
