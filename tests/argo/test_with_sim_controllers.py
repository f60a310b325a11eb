"""The Argo dialect over the simulator's real controllers: a migration hook Job and a Deployment rollout.

Here the Job's outcome comes from the simulator's job controller (backoffLimit,
pod exit codes from the image registry) and health from the deployment
controller and kubelet, so times are drawn from the cluster's seeded timings;
the tests assert order and outcome, and that the same seed gives the same run.
"""
import simpy
from tests.argo.argo_support import deployment, job

from labkit.argo import ArgoSystem, ArgoTimings
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster
from labkit.sim.registry import ImageRegistry


def _run(tmp_path, migrate_tag, seed=3):
    env = simpy.Environment()
    log = EventLog(lambda: env.now)
    registry = ImageRegistry()
    registry.add("migrate", ["ok"], run_seconds=4)
    registry.add("migrate", ["broken"], run_seconds=4, exit_code=1)
    cluster = SimCluster(seed=seed, env=env, log=log, registry=registry, controllers=True)
    repo = ManifestRepo(tmp_path / "repo", log=log)
    argo = ArgoSystem(cluster, env, log=log, seed=seed, timings=ArgoTimings.fixed(),
                      engine_timings=EngineTimings(api_call=0.0))
    argo.add_repo(repo)
    argo.install()
    repo.commit({"app/migrate.yaml": job("migrate", hook="PreSync", image=f"migrate:{migrate_tag}"),
                 "app/web.yaml": deployment("web", replicas=2)}, message="app", author="alice", when=0)
    app = (f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  namespace: argocd\n"
           f"spec:\n  project: default\n  source:\n    repoURL: {repo.url}\n    path: app\n  destination:\n"
           f"    server: https://kubernetes.default.svc\n    namespace: default\n  syncPolicy:\n    automated: {{}}\n"
           f"    retry:\n      limit: 0\n")
    argo.apply(app, file="web.yaml")
    env.run(until=300)
    return argo, cluster, log


def test_migration_hook_then_rollout_to_healthy(tmp_path):
    argo, cluster, log = _run(tmp_path, "ok")
    st = argo.status("web")
    assert st["operationState"]["phase"] == "Succeeded"
    assert st["health"]["status"] == "Healthy" and st["sync"]["status"] == "Synced"
    job_done = next(e.time for e in log.filter(event="HookCompleted"))
    web_created = log.first(component="api", event="Created", object="Deployment/default/web").time
    assert web_created >= job_done > 0
    assert len([p for p in cluster.list("v1", "Pod", "default") if p["metadata"]["name"].startswith("web-")]) == 2


def test_backoff_limit_zero_failure_halts_the_sync(tmp_path):
    argo, cluster, log = _run(tmp_path, "broken")
    op = argo.status("web")["operationState"]
    assert op["phase"] == "Failed"
    assert op["message"] == "one or more synchronization tasks completed unsuccessfully"
    hook = next(r for r in op["syncResult"]["resources"] if r["kind"] == "Job")
    assert (hook["hookPhase"], hook["message"]) == ("Failed", "Job has reached the specified backoff limit")
    assert cluster.get("apps/v1", "Deployment", "web", "default") is None


def test_same_seed_same_run(tmp_path):
    a = _run(tmp_path / "a", "ok")[2]
    b = _run(tmp_path / "b", "ok")[2]
    key = lambda log: [(e.time, e.component, e.event, e.object) for e in log  # noqa: E731
                       if e.component.startswith("argocd")]
    assert key(a) == key(b)
