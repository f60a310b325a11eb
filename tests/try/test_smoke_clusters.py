"""Smoke test on the project's own sample fleet (``clusters/``): expectations derived from the tree itself."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"


def _expected() -> dict[str, dict]:
    """Per cluster directory with a flux-system bootstrap: the overlay its apps Kustomization builds, and more."""
    out = {}
    for boot in sorted(CLUSTERS.glob("*/flux-system/gotk-sync.yaml")):
        cdir = boot.parent.parent
        docs = [d for f in sorted(cdir.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
        ks = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Kustomization"}
        overlay = CLUSTERS / ks["apps"]["spec"]["path"]
        kust = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        patch = yaml.safe_load((overlay / "replicas-patch.yaml").read_text())
        out[cdir.name] = {"namespace": kust["namespace"], "replicas": patch["spec"]["replicas"],
                          "deployment": patch["metadata"]["name"], "units": {"flux-system", *ks}}
    return out


def test_the_sample_fleet_reconciles_cleanly(tryit):
    expected = _expected()
    assert expected, "the sample fleet has bootstrap directories"
    res = tryit(CLUSTERS, history=5)
    rep = res.report
    # one simulated cluster per bootstrap: staging and prod both define flux-system/flux-system
    assert sorted(t.name for t in rep.targets) == sorted(expected)
    for name, exp in expected.items():
        units = {u.name: u for u in rep.units if u.target == name}
        assert set(units) == exp["units"]
        assert all(u.status == "Ready" for u in units.values()), [(u.name, u.message) for u in units.values()]
        dep = next(o for o in rep.objects if o.target == name and o.kind == "Deployment")
        assert dep.key == f"Deployment/{exp['namespace']}/{exp['deployment']}"
        assert dep.outcome == "healthy" and dep.time_to_ready > 0
        assert dep.message == f"Deployment is available. Replicas: {exp['replicas']}"
        run = res.runs[name]
        live = run.cluster.get("apps/v1", "Deployment", exp["deployment"], exp["namespace"])
        assert live["status"]["readyReplicas"] == exp["replicas"]
    assert all(o.outcome in ("healthy", "created") for o in rep.objects)
    assert [p for p in rep.pitfalls if p.severity == "error"] == []
    assert rep.unreconciled == [] and all(t.settled for t in rep.targets)
