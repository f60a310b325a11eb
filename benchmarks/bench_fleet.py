"""Fleet benchmark for the Argo CD dialect (a script, not a test: ``python benchmarks/bench_fleet.py [N]``).

1,000 services of 5 plain-YAML objects each (Deployment, Service, ConfigMap,
ServiceAccount, Secret) in one repository; an ApplicationSet with a git
directory generator makes 1,000 automated Applications.  Measured in wall-clock
seconds (and CPU seconds of this process, which a busy machine disturbs less):

* ``first_sync`` — from applying the ApplicationSet until every Application is
  Synced (generation, 1,000 refreshes, 1,000 sync operations, 5,000 creates);
* ``noop_refresh`` — a refresh of every Application with nothing changed
  (1,000 comparisons of 5 objects, status writes, no apply).

Targets (design brief): first sync < 20 s, no-op refresh < 3 s.  The simulator's
workload controllers are off: the measurement is of Argo's work, not of pods.  The
figures also go to ``labkit bench`` (``labkit.app.bench.report``); under ``labkit bench
--quick`` the fleet has 200 services and the figures carry no target.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import simpy

from labkit.argo import ArgoSystem, ArgoTimings
from labkit.app.bench import Figure, quick, report
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster


def service_files(name: str) -> dict[str, str]:
    return {
        f"services/{name}/deployment.yaml": (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n"
            f"  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n"
            f"        app: {name}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/{name}:1.0.0\n"
            f"        ports:\n        - containerPort: 8080\n"),
        f"services/{name}/service.yaml": (
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n"
            f"  ports:\n  - port: 80\n    targetPort: 8080\n"),
        f"services/{name}/config.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  LOG_LEVEL: info\n"),
        f"services/{name}/sa.yaml": f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n",
        f"services/{name}/secret.yaml": (
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-db\ntype: Opaque\nstringData:\n  user: app\n"),
    }


def main(n: int = 1000) -> dict[str, float]:
    env = simpy.Environment()
    log = EventLog(lambda: env.now)
    cluster = SimCluster(seed=1, env=env, log=log, controllers=False)
    tmp = Path(tempfile.mkdtemp(prefix="labkit-fleet-"))
    repo = ManifestRepo(tmp / "repo", log=log)
    files: dict[str, str] = {}
    for i in range(n):
        files.update(service_files(f"svc-{i:04d}"))
    repo.commit(files, message="fleet", author="platform", when=0)
    argo = ArgoSystem(cluster, env, log=log, seed=1, timings=ArgoTimings(),
                      engine_timings=EngineTimings(api_call=0.002))
    argo.add_repo(repo)
    argo.install()
    appset = (f"apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\n"
              f"  namespace: argocd\nspec:\n  generators:\n  - git:\n      repoURL: {repo.url}\n"
              f"      revision: HEAD\n      directories:\n      - path: 'services/*'\n  template:\n"
              f"    metadata:\n      name: '{{{{path.basename}}}}'\n    spec:\n      project: default\n"
              f"      source:\n        repoURL: {repo.url}\n        targetRevision: HEAD\n        path: '{{{{path}}}}'\n"
              f"      destination:\n        server: https://kubernetes.default.svc\n"
              f"        namespace: default\n      syncPolicy:\n        automated: {{}}\n")
    t0, c0 = time.perf_counter(), time.process_time()
    argo.apply(appset, file="fleet.yaml")
    step = 5.0
    while True:
        env.run(until=env.now + step)
        synced = sum(1 for c in argo.apps.values() if (c.last_status.get("sync") or {}).get("status") == "Synced")
        if len(argo.apps) == n and synced == n:
            break
        if env.now > 600:
            raise SystemExit(f"not converged: {synced}/{len(argo.apps)}")
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    virtual_first = env.now
    refreshes = sum(c.refreshes for c in argo.apps.values())
    t1, c1 = time.perf_counter(), time.process_time()
    for c in argo.apps.values():
        c.request_refresh(3)
    env.run(until=env.now + 5)
    noop, noop_cpu = time.perf_counter() - t1, time.process_time() - c1
    writes = cluster.store.writes
    out = {"apps": float(len(argo.apps)), "objects": float(5 * n), "first_sync_wall_s": round(first, 2), "first_sync_cpu_s": round(first_cpu, 2),
           "first_sync_virtual_s": virtual_first, "noop_refresh_wall_s": round(noop, 2), "noop_refresh_cpu_s": round(noop_cpu, 2),
           "refreshes_after_first_sync": float(refreshes), "store_writes": float(writes)}
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else (200 if quick() else 1000)
    result = main(n)
    for k, v in result.items():
        print(f"{k}: {v}")
    full = n == 1000
    report([
        Figure(f"first full sync, {n:,} Applications x 5 objects", result["first_sync_wall_s"], "s",
               target=20.0 if full else None,
               note=f"cpu {result['first_sync_cpu_s']} s; {result['first_sync_virtual_s']:g} virtual s"),
        Figure(f"no-op refresh of {n:,} Applications", result["noop_refresh_wall_s"], "s",
               target=3.0 if full else None, note=f"cpu {result['noop_refresh_cpu_s']} s"),
    ])
