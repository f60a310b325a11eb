"""Verdict edge cases a reviewer found: equal answers spelled differently, a password in a comment, YAML anchors.

Each answer is committed in a fresh workspace and checked the way ``labkit check`` does.
"""
from __future__ import annotations

import pytest

from labkit.workshop import Workspace, check, exercises, get


def _checked(tmp_path, ex_id, edit, message="participant answer"):
    ex = get(ex_id)
    ws = Workspace.create(tmp_path / "ws", {ex.id: ex.start()})
    sha = ws.commit(ex_id, edit(ws.files(ex_id)), message)
    return check(ex_id, ws), sha


def test_drift_keep_hotfix_accepts_half_a_gibibyte(tmp_path):
    from labkit.workshop.catalog.drift import BASE_DEPLOYMENT, GIT_LIMIT

    def edit(files):
        assert f"memory: {GIT_LIMIT}" in files[BASE_DEPLOYMENT]
        return {BASE_DEPLOYMENT: files[BASE_DEPLOYMENT].replace(f"memory: {GIT_LIMIT}", "memory: 0.5Gi")}

    verdict, _ = _checked(tmp_path, "drift-keep-hotfix", edit, "podinfo: memory limit 0.5Gi (2 a.m. hotfix)")
    assert verdict.solved, verdict.text()


def test_stateful_grow_volumes_accepts_2048Mi(tmp_path):
    from labkit.workshop.catalog.stateful_edges import POSTGRES
    from labkit.workshop.replay_extra import annotate, edit_docs

    def grow(d):
        d["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2048Mi"
        annotate("kustomize.toolkit.fluxcd.io/force", "enabled")(d)

    verdict, _ = _checked(tmp_path, "stateful-grow-volumes", edit_docs(POSTGRES, grow, kind="StatefulSet"))
    assert verdict.solved, verdict.text()
    # the judge does not claim the existing claims grew: it says they keep their size
    assert "never resizes" in verdict.observed and "1Gi" in verdict.observed, verdict.text()


@pytest.mark.parametrize("encode", [False, True], ids=["plain", "base64"])
def test_seal_it_rejects_the_password_in_a_comment(tmp_path, encode):
    import base64

    from labkit.workshop.catalog import secrets as s

    shown = base64.b64encode(s.DB_PASSWORD.encode()).decode() if encode else s.DB_PASSWORD

    def edit(files):
        out = s._seal_solution(files)
        out[s.KUSTOMIZATION] = f"# DBA password for reference: {shown}\n" + out[s.KUSTOMIZATION]
        return out

    verdict, sha = _checked(tmp_path, "secrets-seal-it", edit, "app: sealed db credentials")
    assert not verdict.solved, verdict.text()
    text = verdict.text()
    assert sha[:7] in text and s.KUSTOMIZATION in text, text
    assert "git rebase -i" in text and "rotate" in text, text


def test_no_start_file_has_yaml_anchors():
    for ex in exercises():
        for path, text in ex.start().items():
            assert "&id0" not in text and "*id0" not in text, f"{ex.id}: {path}"


def test_every_exercise_folder_has_a_readme():
    for ex in exercises():
        assert ex.start().get("README.md"), ex.id


def test_notebook_map_minutes_are_whole_numbers_or_a_dash():
    from labkit.workshop import start_here

    col = start_here.notebook_map()["exercise minutes (estimate)"]
    assert all(v == "—" or str(v).isdigit() for v in col), list(col)
