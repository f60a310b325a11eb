"""Start here: each OpenGitOps principle measured from one simulated fleet; the playground drives the same lab."""
from __future__ import annotations

import pytest

from labkit.core import report
from labkit.scenarios import spec as scenario
from labkit.workshop import start_here as sh
from tests.notebook_runs import group as notebook_group


@pytest.fixture(scope="module")
def result():
    return sh.run_start_here(seed=0)


def test_declarative_every_declared_object_is_live_and_unchanged(result):
    d = result.declarative
    assert len(d) >= 6 and (d.plan == "unchanged").all()
    dep = d[d.object == "Deployment/podinfo-staging/podinfo"].iloc[0]
    assert dep["in git (desired)"] == dep["live"] and "kustomize-controller" in dep["field managers (live)"]
    assert {"Kustomization/flux-system/apps", "GitRepository/flux-system/flux-system"} <= set(d.object)


def test_versioned_deploy_record_and_revert(result):
    rec = result.record
    assert list(rec.author)[-3:] == ["alice", "bob", "alice"] and rec.message.iloc[-1].startswith("Revert")
    assert rec.outcome.iloc[-1] == "healthy" and "health check failed" in rec.outcome.iloc[-2]
    assert result.lab.image(sh.ENV).endswith(f":{sh.GOOD_TAG}")
    m = result.metrics()
    assert m["versioned_deploy_record_commits"] == len(rec) and m["versioned_revert_to_healthy_s"] is not None


def test_pulled_every_push_fetched_within_one_poll_and_only_the_cluster_writes_to_it(result):
    p = result.pulls
    assert len(p) == 3 and p.fetched_s.notna().all() and p.applied_s.notna().all()
    assert (p.push_to_fetch_s <= result.source_interval_s + 5).all()
    writers = result.metrics()["pulled_cluster_writers"]
    assert "kustomize-controller" in writers and not any(w.startswith("kubectl") for w in writers)
    assert set(result.who[result.who["writes to"] == "git (push)"].identity) == {"alice", "bob"}


def test_reconciled_hotfix_reverted_within_one_interval(result):
    after = result.metrics()["reconciled_hotfix_reverted_after_s"]
    assert after is not None and 0 < after <= result.apps_interval_s + 30
    assert sh.memory_limit(result.lab.deployment(sh.ENV)) != sh.HOTFIX_LIMIT


def test_the_same_seed_gives_the_same_run(result):
    assert sh.run_start_here(seed=0).metrics() == result.metrics()


def test_figures_are_titled_and_labelled(result, tmp_path):
    for name, fn in (("versioned", sh.plot_versioned), ("pulled", sh.plot_pulled),
                     ("reconciled", sh.plot_reconciled)):
        assert report.save_figure(fn(result), tmp_path, name).is_file()


def test_playground_panels_follow_the_clicks():
    res = sh.run_start_here(seed=1)
    pg = sh.PrinciplesPlayground(res.lab)
    assert all(pg.buttons[k].description == v for k, v in pg.LABELS.items())
    pg.buttons["edit"].click()
    assert "512Mi" in pg.status.value and "configured" in pg.panels.value  # drift: the plan would take it back
    pg.buttons["commit"].click()
    assert "git has a newer commit" in pg.panels.value
    for _ in range(12):
        pg.buttons["1m"].click()
    assert "6.5.2" in pg.status.value and "git has a newer commit" not in pg.panels.value
    assert "512Mi" not in pg.status.value  # the apply of the new commit took the hotfix back too
    pg.buttons["revert"].click()
    assert "Revert" in pg.panels.value


def test_map_lists_every_other_scenario_and_the_first_exercise_exists():
    m = sh.notebook_map()
    assert sorted(m.notebook) == sorted(f"{n}.ipynb" for n in scenario.names() if n != sh.SELF)
    from labkit.workshop.registry import get

    assert get(sh.first_exercise_id())


@pytest.mark.notebooks
@notebook_group(sh.SELF)
def test_headless_run_with_explorer_leaves_the_playground_widget(notebook_runs):
    import nbformat

    run = notebook_runs.get(sh.SELF)  # the one run of this notebook, shared with tests/test_notebooks.py
    assert run.parameters == {"explorer": "true"}
    res = run.result
    assert res.ok, res.error
    nb = nbformat.read(run.executed, as_version=4)
    views = [o for c in nb.cells if c.cell_type == "code" and "PrinciplesPlayground" in c.source
             for o in c.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the playground cell's output holds no widget view"
