"""Every exercise proven both ways, from a fresh workspace each time.

For each exercise: the start state fails its check; the reference solution
passes; every plausible wrong answer fails with feedback containing the
fragment the exercise declares for it (what is still wrong).  The verdicts come
from replaying real git commits into the simulator — the same path
``labkit check`` takes.
"""
from __future__ import annotations

import pytest

from labkit.workshop import Workspace, check, exercises, solve

CASES = [(e.id, "start", None) for e in exercises()]
CASES += [(e.id, "solution", None) for e in exercises()]
CASES += [(e.id, "wrong", i) for e in exercises() for i in range(len(e.wrong))]


def _workspace(tmp_path, ex):
    return Workspace.create(tmp_path / "ws", {ex.id: ex.start()})


@pytest.mark.parametrize("ex_id,kind,index", CASES,
                         ids=[f"{i}-{k}{'' if n is None else n}" for i, k, n in CASES])
def test_exercise(tmp_path, ex_id, kind, index):
    from labkit.workshop import get

    ex = get(ex_id)
    ws = _workspace(tmp_path, ex)
    if kind == "solution":
        solve(ex_id, ws)
    elif kind == "wrong":
        change = ex.wrong[index]
        while change is not None:
            ws.commit(ex_id, change.edit(ws.files(ex_id)), change.message)
            change = change.then
    verdict = check(ex_id, ws)
    if kind == "solution":
        assert verdict.solved, verdict.text()
    else:
        assert not verdict.solved, verdict.text()
        assert verdict.hint, "a failed check gives a hint"
        if kind == "wrong":
            assert ex.wrong[index].expect and ex.wrong[index].expect in verdict.text(), verdict.text()


def test_the_catalogue_has_ids_goals_and_hints():
    items = exercises()
    assert len({e.id for e in items}) == len(items)
    for e in items:
        assert e.goal and e.task and e.hints and e.wrong, e.id


def test_earlier_tries_do_not_count_against_the_final_answer(tmp_path):
    """Ten commits before the right one: each exercise judges the answer, not the way to it."""
    from labkit.workshop import get

    ex = get("hpa-flux-ignore")
    ws = _workspace(tmp_path, ex)
    for i in range(10):
        ws.commit(ex.id, {"notes.md": f"try {i}\n"}, f"try {i}")
    solve(ex.id, ws)
    verdict = check(ex.id, ws)
    assert verdict.solved, verdict.text()
