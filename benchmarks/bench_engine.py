"""Benchmark: one reconcile of a 1,000-object Kustomization into the simulator.

Targets (issue "The GitOps engine ..."): first apply < 5 s wall, no-op resync < 1 s
wall, zero writes on the no-op.  The repository holds 1,000 objects (ConfigMaps,
Services and Deployments in one namespace) rendered by real kustomize; the
simulator's controllers run (Deployments get ReplicaSets and Pods) but the
Kustomization does not wait for health, so the figures are the engine's own
fetch → build → plan → apply → prune.  Run: ``make bench`` or
``.venv/bin/python benchmarks/bench_engine.py``.  The figures go to ``labkit bench``
through ``labkit.app.bench.report``; under ``labkit bench --quick`` the Kustomization holds
200 objects and the figures carry no target (the targets are for 1,000).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from labkit.app.bench import Figure, quick, report
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

URL = "https://github.com/labkit/bench"
N = 200 if quick() else 1000
FULL = N == 1000


def write_tree(root: Path, n: int) -> None:
    apps = root / "apps"
    apps.mkdir(parents=True)
    names = []
    (apps / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n")
    names.append("ns.yaml")
    for i in range(n - 1):
        kind = ("cm", "svc", "deploy")[i % 3]
        if kind == "cm":
            text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: bench\ndata:\n  key: value-{i}\n"
        elif kind == "svc":
            text = (f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: bench\nspec:\n"
                    f"  selector:\n    app: app-{i}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
        else:
            text = (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: bench\nspec:\n"
                    f"  replicas: 1\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n"
                    f"      labels:\n        app: app-{i}\n    spec:\n      containers:\n      - name: app\n"
                    f"        image: nginx:1.27\n        ports:\n        - containerPort: 8080\n"
                    f"        resources:\n          requests:\n            cpu: 100m\n")
        name = f"{kind}-{i}.yaml"
        (apps / name).write_text(text)
        names.append(name)
    (apps / "kustomization.yaml").write_text("resources:\n" + "".join(f"- {n}\n" for n in names))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    write_tree(tmp / "seed", N)
    cluster = SimCluster(seed=0)
    repo = ManifestRepo(tmp / "repo", url=URL)
    repo.seed(tmp / "seed", when=0)
    flux = FluxSystem(cluster, cluster.env, log=cluster.log, timings=FluxTimings.fixed())
    flux.install()
    flux.add_remote(URL, repo)
    flux.apply([
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": "bench", "namespace": "flux-system"},
         "spec": {"interval": "1h", "url": URL, "ref": {"branch": "main"}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": "bench", "namespace": "flux-system"},
         "spec": {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": "bench"}, "path": "./apps",
                  "prune": True}},
    ])
    rec = flux.reconcilers
    log = cluster.log
    done_events: list = []
    log.subscribe(lambda e: done_events.append(e) if e.event == "ReconciliationSucceeded"
                  and e.object == "Kustomization/flux-system/bench" else None)

    def succeeded() -> list:
        return done_events

    t0 = time.perf_counter()
    while not succeeded():
        cluster.env.step()
    first = time.perf_counter() - t0
    done = succeeded()[0]
    writes_before = cluster.store.writes_by_manager.get("kustomize-controller", 0)
    api_before = len(log.filter(component="api", event=["Created", "Updated", "Deleted"]))
    # let the controllers settle (pods, replica sets) before the resync, outside the timing
    cluster.run(until=done.time + 550)
    api_settled = len(log.filter(component="api", event=["Created", "Updated", "Deleted"]))
    writes_before = cluster.store.writes_by_manager.get("kustomize-controller", 0)
    t1 = time.perf_counter()
    while len(succeeded()) < 2:
        cluster.env.step()
    noop = time.perf_counter() - t1
    noop_writes = [e for e in log.filter(component="api", event=["Created", "Updated", "Deleted"])[api_settled:]
                   if e.detail.get("manager") == "kustomize-controller"]
    second = succeeded()[1]
    print(f"objects in the Kustomization: {N}")
    print(f"first apply (fetch+build+plan+apply+prune), wall: {first:.2f} s  (target < 5 s); "
          f"changeset: { {k: v for k, v in done.detail.items() if k.startswith('n_')} }")
    print(f"no-op resync, wall: {noop:.2f} s  (target < 1 s); changeset: "
          f"{ {k: v for k, v in second.detail.items() if k.startswith('n_')} }")
    print(f"API writes by kustomize-controller during the no-op resync: {len(noop_writes)} (target 0); "
          f"status writes: {cluster.store.writes_by_manager.get('kustomize-controller', 0) - writes_before}")
    print(f"kustomize renders: {flux.renderer.misses} uncached, {flux.renderer.hits} cached; reconcilers: {len(rec)}")
    _ = api_before
    size = f"{N:,} objects"
    report([
        Figure(f"first apply, {size} (fetch+build+plan+apply+prune)", first, "s", target=5.0 if FULL else None,
               note=f"{done.detail.get('n_created', '?')} created"),
        Figure(f"no-op resync, {size}", noop, "s", target=1.0 if FULL else None),
        Figure("API writes by kustomize-controller during the no-op resync", len(noop_writes), "",
               target=0, op="=="),
    ])


if __name__ == "__main__":
    main()
