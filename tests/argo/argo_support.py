"""Support for the Argo CD dialect's tests: a shared clock, clusters, a manifest repository, deterministic timings.

The workload controllers of the simulator are another engineer's work in
progress, so these tests bring a tiny, exact stand-in (``FakeWorkloads``): a
Deployment becomes available ``deploy_ready`` seconds after a new generation is
written, and a Job completes — or fails with the job controller's
``BackoffLimitExceeded`` condition — ``job_runs`` seconds after it is created.
Both write only ``status`` (as controllers do), so every time a test asserts is
an exact sum of modelled durations.
"""
from __future__ import annotations

import textwrap
from typing import Any, Callable

import simpy

from labkit.argo import ArgoSystem, ArgoTimings
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

BASE = "main"


class FakeWorkloads:
    """Deployment and Job status writers with fixed delays (see module docstring)."""

    def __init__(self, cluster: SimCluster, *, deploy_ready: float = 5.0, job_runs: float = 10.0,
                 job_fails: Callable[[str], bool] = lambda name: False, deploy_degraded: Callable[[str], bool] = lambda n: False):
        self.cluster = cluster
        self.env = cluster.env
        self.deploy_ready = deploy_ready
        self.job_runs = job_runs
        self.job_fails = job_fails
        self.deploy_degraded = deploy_degraded
        self._seen: dict[tuple[str, str], Any] = {}
        cluster.watch("apps/v1", "Deployment", self._deployment)
        cluster.watch("batch/v1", "Job", self._job)

    def _deployment(self, event: str, obj: dict) -> None:
        if event == "DELETED":
            return
        md = obj["metadata"]
        gen = md.get("generation")
        key = (md.get("namespace", ""), md["name"])
        if (obj.get("status") or {}).get("observedGeneration") == gen or self._seen.get(("d",) + key) == gen:
            return
        self._seen[("d",) + key] = gen
        self.env.process(self._finish_deployment(md["namespace"], md["name"], gen))

    def _finish_deployment(self, ns: str, name: str, gen: int):
        yield self.env.timeout(self.deploy_ready)
        live = self.cluster.get("apps/v1", "Deployment", name, ns)
        if live is None or live["metadata"].get("generation") != gen:
            return
        n = live["spec"].get("replicas", 1)
        if self.deploy_degraded(name):
            status = {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": 0,
                      "availableReplicas": 0,
                      "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                      "message": f'ReplicaSet "{name}-1" has timed out progressing.'}]}
        else:
            status = {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                      "availableReplicas": n,
                      "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                     {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        self.cluster.patch_status("apps/v1", "Deployment", name, ns, status, field_manager="deployment-controller")

    def _job(self, event: str, obj: dict) -> None:
        if event != "ADDED":
            return
        md = obj["metadata"]
        self.env.process(self._finish_job(md["namespace"], md["name"], md["uid"]))

    def _finish_job(self, ns: str, name: str, uid: str):
        yield self.env.timeout(self.job_runs)
        live = self.cluster.get("batch/v1", "Job", name, ns)
        if live is None or live["metadata"]["uid"] != uid:
            return
        if self.job_fails(name):
            status = {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                   "message": "Job has reached the specified backoff limit"}]}
        else:
            status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        self.cluster.patch_status("batch/v1", "Job", name, ns, status, field_manager="job-controller")


class Lab:
    """A management cluster, destination clusters, one repository and an ArgoSystem on one clock."""

    def __init__(self, tmp_path, *, seed: int = 1, timings: ArgoTimings | None = None, fake: bool = True,
                 extra_clusters: dict[str, dict] | None = None, **fake_kw: Any):
        self.env = simpy.Environment()
        self.log = EventLog(lambda: self.env.now)
        self.mgmt = SimCluster(seed=seed, name="mgmt", env=self.env, log=self.log, controllers=False)
        self.repo = ManifestRepo(tmp_path / "repo", log=self.log, name="apps")
        self.argo = ArgoSystem(self.mgmt, self.env, log=self.log, seed=seed,
                               timings=timings or ArgoTimings.fixed(), engine_timings=EngineTimings(api_call=0.0))
        self.argo.add_repo(self.repo)
        self.clusters: dict[str, SimCluster] = {}
        self.fakes: dict[str, FakeWorkloads] = {}
        if fake:
            self.fakes["in-cluster"] = FakeWorkloads(self.mgmt, **fake_kw)
        for name, conf in (extra_clusters or {}).items():
            c = SimCluster(seed=seed, name=name, env=self.env, log=self.log, controllers=False)
            self.clusters[name] = c
            self.argo.add_cluster(name, conf.get("server", f"https://{name}.example"), c, labels=conf.get("labels"))
            if fake:
                self.fakes[name] = FakeWorkloads(c, **fake_kw)
        self.argo.install()

    @property
    def url(self) -> str:
        return self.repo.url

    def commit(self, files: dict[str, str | None], message: str = "change", when: float | None = None) -> str:
        changes = {p: (textwrap.dedent(t).lstrip() if isinstance(t, str) else None) for p, t in files.items()}
        return self.repo.commit(changes, message=message, author="alice", when=self.env.now if when is None else when)

    def app_yaml(self, name: str, path: str, *, auto: bool | dict = False, options: list[str] | None = None,
                 namespace: str = "default", extra_spec: str = "", server: str = "https://kubernetes.default.svc",
                 finalizer: bool = False, retry: str = "") -> str:
        policy = ""
        if auto is not False:
            flags = auto if isinstance(auto, dict) else {}
            policy = "  syncPolicy:\n    automated:\n" + "".join(
                f"      {k}: {'true' if v else 'false'}\n" for k, v in flags.items()) + \
                ("      {}\n" if not flags else "")
            if not flags:
                policy = "  syncPolicy:\n    automated: {}\n"
        if options:
            if not policy:
                policy = "  syncPolicy:\n"
            policy += "    syncOptions:\n" + "".join(f"    - {o}\n" for o in options)
        if retry:
            if not policy:
                policy = "  syncPolicy:\n"
            policy += retry
        fin = "  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n" if finalizer else ""
        return (f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n"
                f"  namespace: argocd\n{fin}spec:\n  project: default\n  source:\n    repoURL: {self.url}\n"
                f"    targetRevision: HEAD\n    path: {path}\n  destination:\n    server: {server}\n"
                f"    namespace: {namespace}\n{policy}{extra_spec}")

    def events(self, component: str | None = None, event: str | None = None, obj: str | None = None) -> list:
        return self.log.filter(component=component, event=event, object=obj)

    def created(self, since: float = 0.0) -> list[tuple[float, str]]:
        return [(e.time, e.object) for e in self.log.filter(component="api", event="Created", since=since)]


def deployment(name: str, *, image: str = "nginx:1.25", replicas: int | None = 2, wave: int | None = None,
               annotations: dict[str, str] | None = None, namespace: str | None = None) -> str:
    ann = dict(annotations or {})
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    ann_text = "".join(f"    {k}: \"{v}\"\n" for k, v in ann.items())
    meta = f"metadata:\n  name: {name}\n" + (f"  namespace: {namespace}\n" if namespace else "") + \
        (f"  annotations:\n{ann_text}" if ann else "")
    rep = f"  replicas: {replicas}\n" if replicas is not None else ""
    return (f"apiVersion: apps/v1\nkind: Deployment\n{meta}spec:\n{rep}  selector:\n    matchLabels:\n"
            f"      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n"
            f"      containers:\n      - name: {name}\n        image: {image}\n")


def configmap(name: str, data: dict[str, str] | None = None, *, wave: int | None = None,
              annotations: dict[str, str] | None = None) -> str:
    ann = dict(annotations or {})
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    ann_text = "".join(f"    {k}: \"{v}\"\n" for k, v in ann.items())
    body = "".join(f"  {k}: \"{v}\"\n" for k, v in (data or {"k": "v"}).items())
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            + (f"  annotations:\n{ann_text}" if ann else "") + f"data:\n{body}")


def job(name: str, *, hook: str | None = None, policy: str | None = None, wave: int | None = None,
        generate: bool = False, image: str = "migrate:1") -> str:
    ann: dict[str, str] = {}
    if hook:
        ann["argocd.argoproj.io/hook"] = hook
    if policy:
        ann["argocd.argoproj.io/hook-delete-policy"] = policy
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    ann_text = "".join(f"    {k}: \"{v}\"\n" for k, v in ann.items())
    ident = f"  generateName: {name}-\n" if generate else f"  name: {name}\n"
    return (f"apiVersion: batch/v1\nkind: Job\nmetadata:\n{ident}" + (f"  annotations:\n{ann_text}" if ann else "")
            + f"spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n"
              f"      - name: {name}\n        image: {image}\n")

