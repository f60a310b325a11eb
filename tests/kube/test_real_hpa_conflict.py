"""hpa-conflict on the real control plane: the real HPA against Flux and Argo CD, driven by the load model.

``labkit run hpa-conflict --cluster CONTEXT`` for both dialects, concurrently (each in its
own process, through ``labkit.app.runner.run_scenario`` — the same path as ``labkit run``),
on the session's control plane (``real_cluster``: its context ``labkit-<name>`` is the
``cluster`` value).  The spike is the scenario's ``LoadModel`` played through KWOK's
per-pod CPU annotation by ``labkit.kube.loaddriver``; metrics-server feeds the real
kube-controller-manager's HPA; Flux's interval run / Argo CD's self-heal set
``spec.replicas`` back.  The run is compressed a little further than the YAML's
real-cluster defaults (100 s instead of 150 s), so the module takes about two minutes.

Nothing here is the scenario's own arithmetic: the checks read the replica history the
watch on the Deployment observed (the executed notebook's ``result``), and what they
assert is what the mechanisms must produce whatever the timing — the HPA went above git's
3, and the GitOps manager lowered a value the HPA owned at least once.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import time

import pytest

from labkit.app import runner
from labkit.scenarios import spec as scenario
from labkit.scenarios.isolation import RUN_LABEL
from tests.kube.conftest import needs_real

pytestmark = needs_real

GIT_REPLICAS = 3
COMPRESSED = {"interval": "20s", "fix_at_s": 5.0, "spike_start_s": 35.0, "spike_ramp_s": 5.0,
              "spike_duration_s": 55.0, "until_s": 100.0}
MANAGERS = {"flux": "kustomize-controller", "argo": "argocd-controller"}


def _changes(notebook) -> list[dict]:
    """The rows of the executed notebook's ``result.changes()`` cell (its HTML table: never wrapped)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip() == "result.changes()":
            for out in cell.outputs:
                html = (out.get("data") or {}).get("text/html")
                if html:
                    return _table_rows(html)
    raise AssertionError("the notebook has no result.changes() table")


def _table_rows(html: str) -> list[dict]:
    from html.parser import HTMLParser

    class Table(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    t = Table()
    t.feed(html)
    header = [h for h in t.rows[0] if h]  # the index column's header cell is empty
    out = []
    for row in t.rows[1:]:
        values = dict(zip(header, row[1:]))  # row[0]: the index
        out.append({"time": float(values["time"]), "to": int(float(values["to"])), "manager": values["manager"],
                    "is_reset": values["is_reset"] == "True"})
    return out


@pytest.fixture(scope="module")
def runs(real_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("real-hpa")
    started = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        futures = {d: pool.submit(runner.run_scenario, "hpa-conflict", {**COMPRESSED, "dialect": d},
                                  cluster=real_cluster.context, out_dir=str(root / d), timeout=240)
                   for d in MANAGERS}
        results = {d: f.result(timeout=400) for d, f in futures.items()}
    return results, time.monotonic() - started


@pytest.mark.parametrize("dialect", sorted(MANAGERS))
def test_the_real_hpa_scales_up_and_gitops_resets_it(runs, dialect):
    results, _ = runs
    res = results[dialect]
    assert res.ok, res.error
    metrics = json.loads((res.out_dir / "metrics.json").read_text())
    assert metrics == res.metrics and metrics["dialect"] == dialect and metrics["fix"] == "none"
    assert set(metrics) == set(scenario.get("hpa-conflict").metrics)  # the keys the YAML declares
    changes = _changes(res.notebook)
    assert changes and changes[0]["to"] == GIT_REPLICAS  # created from git
    # the real HPA (kube-controller-manager, reading metrics-server) scaled above git's replicas ...
    hpa = [c for c in changes if c["manager"] == "kube-controller-manager"]
    assert hpa and max(c["to"] for c in hpa) > GIT_REPLICAS
    assert metrics["max_replicas"] == max(c["to"] for c in changes) > GIT_REPLICAS
    # ... not before the load rose (35 s, less the 5 s ramp), and GitOps took it back at least once
    assert min(c["time"] for c in hpa) > COMPRESSED["spike_start_s"] - COMPRESSED["spike_ramp_s"]
    resets = [c for c in changes if c["is_reset"]]
    assert resets and all(c["manager"] == MANAGERS[dialect] and c["to"] == GIT_REPLICAS for c in resets)
    assert metrics["replica_resets"] == len(resets) >= 1
    assert metrics["hpa_rescales"] >= len(hpa)  # the HPA's own SuccessfulRescale Events
    assert metrics["fell_to_default_replicas"] is False


def test_runs_clean_up_and_stay_within_budget(runs, kube):
    _, wall = runs
    leftovers = [n["metadata"]["name"] for n in kube.list("v1", "Namespace")
                 if RUN_LABEL in (n["metadata"].get("labels") or {}) and not n["metadata"].get("deletionTimestamp")]
    assert leftovers == []
    assert wall < 200, f"the two real-cluster hpa-conflict runs took {wall:.0f} s"
