"""The workshop CLI contract: exercises --json, workshop start, check exit codes, solve, hint one at a time."""
from __future__ import annotations

import json
import subprocess
import sys

from labkit.workshop import exercises

LABKIT = [sys.executable, "-m", "labkit"]


def run(*args, cwd=None):
    return subprocess.run([*LABKIT, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_exercises_json_lists_id_scenario_title_goal():
    proc = run("exercises", "--json")
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    assert [i["id"] for i in items] == [e.id for e in exercises()]
    for item in items:
        assert {"id", "scenario", "title", "goal"} <= set(item)


def test_unknown_scenario_and_id_are_one_line_errors(tmp_path):
    proc = run("exercises", "no-such-scenario")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "SCENARIO" in proc.stderr
    proc = run("check", "no-such-exercise", "--workspace", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_start_check_hint_solve_check(tmp_path):
    ws = tmp_path / "ws"
    ex = exercises()[0]
    proc = run("workshop", "start", str(ws))
    assert proc.returncode == 0, proc.stderr
    assert (ws / "fleet" / ex.id).is_dir() and (ws / "notebooks").is_dir()
    proc = run("check", ex.id, cwd=ws / "fleet")  # found from a folder inside the workspace
    assert proc.returncode == 1
    assert "NOT YET" in proc.stdout and "hint: (1/" in proc.stdout
    proc = run("hint", ex.id, "--workspace", str(ws))
    assert proc.stdout.startswith("(2/")  # hints come one at a time
    proc = run("solve", ex.id, "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr
    proc = run("check", ex.id, "--workspace", str(ws), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["solved"] is True


def test_uncommitted_edits_are_pointed_out(tmp_path):
    ws = tmp_path / "ws"
    ex = exercises()[0]
    assert run("workshop", "start", str(ws)).returncode == 0
    change = ex.solution.edit({p.relative_to(ws / "fleet" / ex.id).as_posix(): p.read_text()
                               for p in (ws / "fleet" / ex.id).rglob("*") if p.is_file()})
    for rel, text in change.items():
        (ws / "fleet" / ex.id / rel).write_text(text)
    proc = run("check", ex.id, "--workspace", str(ws))
    assert proc.returncode == 1  # the solution is in the editor, not in git
    assert "uncommitted changes" in proc.stdout


def test_start_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("mine")
    proc = run("workshop", "start", str(tmp_path))
    assert proc.returncode == 2 and "not empty" in proc.stderr


def test_checks_repeat_the_current_hint_and_only_hint_advances(tmp_path):
    ws = tmp_path / "ws"
    ex = exercises()[0]
    assert run("workshop", "start", str(ws)).returncode == 0
    for _ in range(3):  # checking again and again never reveals the answer
        assert "hint: (1/" in run("check", ex.id, "--workspace", str(ws)).stdout
    assert run("hint", ex.id, "--workspace", str(ws)).stdout.startswith("(2/")
    assert "hint: (2/" in run("check", ex.id, "--workspace", str(ws)).stdout


def test_a_participant_without_a_git_identity_can_commit(tmp_path):
    import os

    ws = tmp_path / "ws"
    ex = exercises()[0]
    assert run("workshop", "start", str(ws)).returncode == 0
    folder = ws / "fleet" / ex.id
    next(p for p in folder.rglob("*.yaml")).write_text("# edited\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER", "EMAIL"))}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp_path))
    proc = subprocess.run(["git", "commit", "-qam", "try"], cwd=ws / "fleet", env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
