"""Fleet: an ApplicationSet over hundreds of services, and how the repository's structure shapes the work.

Part 1 — the ApplicationSet at scale
====================================

A fleet repository is generated **at run time** into the lab's real git
repository (nothing is committed to labkit): ``services/<name>/`` for each of
``services`` services (200 by default), each a small directory with a
Deployment, a Service and a ConfigMap (``source_type=kustomize`` adds a
``kustomization.yaml``, so every manifest generation is a real ``kubectl
kustomize`` process).  One ``ApplicationSet`` with the **git directories
generator** (``services/*``) turns every directory into an Application
(``{{path.basename}}``, automated sync with prune, the resources finalizer so
a deleted Application takes its resources with it).

* ``reconcile_all_wall_s`` — wall-clock seconds (``time.perf_counter``) from
  applying the ApplicationSet until every generated Application is Synced and
  Healthy (Synced only without workload controllers): the real cost, on this machine, of the dialect's generator, repo
  server, comparisons, server-side applies and — with
  ``workload_controllers=True`` (the default) — the simulator's Deployment,
  ReplicaSet and kubelet controllers bringing every pod up.  Virtual time is
  reported separately (``reconcile_all_virtual_s``).
* **Adding a service is adding a directory.**  A commit creates
  ``services/<new>/``; the git host's webhook makes the ApplicationSet
  controller re-read the generator at once (without ``webhook`` it waits for
  the generator's 180 s requeue), a new Application appears and syncs.
  ``new_app_after_s`` is commit → Application Synced and Healthy, in virtual
  seconds.
* **Removing one prunes its Application.**  A commit deletes a service
  directory; the generator no longer produces it, the ApplicationSet (policy
  ``sync``) deletes the Application, whose finalizer deletes its Deployment,
  Service and ConfigMap.  ``removed_app_after_s`` is commit → Application and
  its objects gone.

Part 2 — repository-structure models
====================================

The same small fleet (``model_services`` services, two environments
``staging`` and ``prod``, ``teams`` teams) is laid out four ways, each in
real generated repositories reconciled by its own Argo CD lab:

``app-of-apps``
    one repository; ``apps/<env>/<svc>.yaml`` hold Application manifests
    reconciled by one root Application per environment; each service's
    manifests live in ``services/<svc>/<env>/``.
``per-team-repos``
    one repository per team (``team-<k>``, services dealt round-robin), each
    with ``<svc>/<env>/`` directories and its own ApplicationSet.
``applicationset``
    one fleet repository ``services/<env>/<svc>/`` and one ApplicationSet
    (git directories ``services/*/*``).
``monorepo-overlays``
    one repository with a kustomize ``base/<svc>/`` per service and one
    overlay per environment (``envs/<env>/kustomization.yaml``: the services,
    their image tags, environment patches), reconciled by one Application per
    environment.

Two changes are made to each with real git commits — a **promotion** (one
service's new image tag reaches prod) and a **fleet-wide change** (every
prod service gets ``LOG_LEVEL=warn``) — and measured:

* files touched and commits made: from git itself (``git diff-tree`` of each
  commit, commits counted over every repository);
* reconcile work per commit, from the event log of the lab reconciling it:
  Applications refreshed at the new revision (``Refreshed`` events), objects
  compared in those refreshes (the refreshed Applications' resources), and
  objects applied (``ResourceApplied`` events).  A webhook refreshes *every*
  Application whose source is the pushed repository and branch, so the blast
  radius of one commit is the number of Applications sharing its repository —
  which is exactly what the structure decides.

Everything here is measured from real git operations and the dialect's own
events; nothing is a constant of the model.

Choices and caveats
===================

* **Directory sources by default.**  Argo's repo server forks one ``kubectl
  kustomize`` per Application and revision, and its manifest cache is keyed by
  revision: with ``source_type=kustomize`` the first sync of 200 services costs
  200 kustomize processes (about 25 s more wall time on a busy two-core
  machine), and *every later commit* another 200 — the real cost of a
  kustomize-per-service fleet in one repository, but too slow for the
  notebook's default run.  Plain directories are parsed in-process, per blob.
* **Workload controllers on.**  With the simulator's Deployment, ReplicaSet
  and kubelet controllers running, "Healthy" means every pod started and is
  ready; the default run still takes a few seconds of wall time, so they stay
  on.  ``workload_controllers=False`` leaves Deployments without status (Argo
  reports them Progressing), so the timings then stop at *Synced*.
* **Virtual times are optimistic at scale.**  labkit's Argo dialect reconciles
  every Application as its own process with no ``--status-processors`` /
  ``--operation-processors`` limit and no client QPS throttle, so
  ``reconcile_all_virtual_s`` is what an unthrottled controller would take;
  the published benchmarks (CNOE: 15k apps in 61 min at default QPS) are
  bound by exactly those limits.  ``reconcile_all_wall_s`` measures labkit.
* The per-team model declares its ApplicationSets directly (a platform
  repository holding them would add one more repository and refresh).

Part 3 — under faults (``fault_rate`` > 0)
==========================================

The part-1 fleet is reconciled twice more in a lab without workload
controllers: once clean, once with every API fault kind at the Cluster seam
(500, 503, 429 with Retry-After, 409, 504 with the write done and the answer
lost, slow responses) and both git fault kinds at a combined ``fault_rate``
per call, never stopping (``labkit.faults.argo.run_fleet_under_faults``).
Converged means every Application completed a sync of head and every object is
live as git has it.  ``faults_extra_virtual_s`` is the extra virtual time it
took, ``faults_objects_lost`` / ``faults_objects_wrongly_deleted`` must be 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from labkit.argo.fleetrepo import (APP_API, FLEET_NS, IMAGE_PREFIX, app_template, applicationset_yaml, service_files,
                                service_name)
from labkit.core.errors import LabkitError
from labkit.gitops.repo import ManifestRepo
from labkit.scenarios.applab import AppLab, yaml_docs

__all__ = ["SOURCE_TYPES", "MODELS", "service_files", "applicationset_yaml", "FleetResult", "run_fleet",
           "compare_models", "plot_fleet", "plot_models", "ENVIRONMENTS"]

SOURCE_TYPES = ("directory", "kustomize")
MODELS = ("app-of-apps", "per-team-repos", "applicationset", "monorepo-overlays")
ENVIRONMENTS = ("staging", "prod")
# ------------------------------------------------------------------ reading an Argo lab

def _apps(lab: AppLab) -> list[dict[str, Any]]:
    return lab.cluster.list(APP_API, "Application", "argocd")


def _all_synced(lab: AppLab, expected: int | None = None, *, healthy: bool = True) -> bool:
    """Every Application Synced (and Healthy, unless ``healthy=False``) with no operation running."""
    apps = _apps(lab)
    if expected is not None and len(apps) != expected:
        return False
    if not apps:
        return False
    for a in apps:
        st = a.get("status") or {}
        if (st.get("sync") or {}).get("status") != "Synced":
            return False
        if healthy and (st.get("health") or {}).get("status") != "Healthy":
            return False
        if ((st.get("operationState") or {}).get("phase")) == "Running":
            return False
    return True


def _app_synced(lab: AppLab, name: str, *, healthy: bool = True) -> bool:
    a = lab.argo.app(name)
    st = (a or {}).get("status") or {}
    return (st.get("sync") or {}).get("status") == "Synced" and (
        not healthy or (st.get("health") or {}).get("status") == "Healthy")


def _managed_objects(lab: AppLab) -> int:
    return sum(len((a.get("status") or {}).get("resources") or []) for a in _apps(lab))


# ------------------------------------------------------------------ part 1

@dataclass
class FleetResult:
    """Part 1 (the ApplicationSet lab) and part 2 (the models table)."""

    lab: AppLab
    services: int
    source_type: str
    workload_controllers: bool
    webhook: bool
    applications: int = 0
    objects: int = 0
    reconcile_all_wall_s: float = 0.0
    reconcile_all_virtual_s: float | None = None
    new_app_after_s: float | None = None
    removed_app_after_s: float | None = None
    models: pd.DataFrame = field(default_factory=pd.DataFrame)
    progress: pd.DataFrame = field(default_factory=pd.DataFrame)
    marks: dict[str, float] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)  # part 3 (fault_rate > 0)

    def metrics(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "services": self.services,
            "applications": self.applications,
            "objects": self.objects,
            "reconcile_all_wall_s": round(self.reconcile_all_wall_s, 3),
            "reconcile_all_virtual_s": self.reconcile_all_virtual_s,
            "new_app_after_s": None if self.new_app_after_s is None else round(self.new_app_after_s, 3),
            "removed_app_after_s": None if self.removed_app_after_s is None else round(self.removed_app_after_s, 3),
            "source_type": self.source_type,
            "workload_controllers": self.workload_controllers,
        }
        for k in ("fault_rate", "faults_injected", "faults_converged_virtual_s", "faults_extra_virtual_s",
                  "faults_extra_wall_s", "faults_objects_lost", "faults_objects_wrongly_deleted"):
            m[k] = self.faults.get(k, 0.0 if k == "fault_rate" else None)
        if len(self.models):
            df = self.models
            m["models"] = list(df.model)
            for col in ("files_per_promotion", "commits_per_promotion", "files_per_fleet_change",
                        "commits_per_fleet_change", "refreshes_per_commit", "objects_compared_per_commit",
                        "objects_applied_per_commit"):
                m[col] = [int(v) for v in df[col]]
        return m


def run_fleet(
    *,
    seed: int = 0,
    services: int = 200,
    source_type: str = "directory",
    webhook: bool = True,
    workload_controllers: bool = True,
    model_services: int = 20,
    teams: int = 4,
    models: bool = True,
    fault_rate: float = 0.0,
) -> FleetResult:
    """Part 1 on ``services`` services, then (``models``) part 2 on ``model_services`` (see module docstring).

    With ``fault_rate`` > 0, part 3: the same ApplicationSet fleet reconciled once without faults and once
    with every API fault kind and both git fault kinds at that combined rate per call
    (``labkit.faults.argo.run_fleet_under_faults``); the extra time to converge and the objects lost or
    wrongly deleted (which must be none) go into the metrics.
    """
    if isinstance(fault_rate, bool) or not isinstance(fault_rate, (int, float)) or not 0.0 <= fault_rate <= 0.5:
        raise LabkitError(f"fault_rate must be a number from 0 to 0.5, got {fault_rate!r}", field="fault_rate")
    if not isinstance(services, int) or isinstance(services, bool) or not 1 <= services <= 2000:
        raise LabkitError(f"services must be an integer from 1 to 2000, got {services!r}", field="services")
    if source_type not in SOURCE_TYPES:
        raise LabkitError(f"unknown source_type {source_type!r}: choose directory or kustomize", field="source_type")
    if not 2 <= model_services <= 200:
        raise LabkitError("model_services must be from 2 to 200", field="model_services")
    if not 1 <= teams <= model_services:
        raise LabkitError("teams must be from 1 to model_services", field="teams")
    kustomize = source_type == "kustomize"
    lab = AppLab("argo", seed=seed, controllers=workload_controllers, webhook=webhook)
    res = FleetResult(lab, services, source_type, workload_controllers, webhook)
    files: dict[str, str] = {}
    for i in range(services):
        files.update(service_files(f"services/{service_name(i)}", service_name(i), kustomize=kustomize))
    lab.commit(files, f"fleet: {services} services", author="platform")
    progress: list[dict[str, Any]] = []

    def sampler() -> Any:
        while True:
            apps = _apps(lab)
            synced = sum(1 for a in apps if ((a.get("status") or {}).get("sync") or {}).get("status") == "Synced"
                         and ((a.get("status") or {}).get("health") or {}).get("status") == "Healthy")
            progress.append({"time": lab.now, "applications": len(apps), "synced_healthy": synced})
            yield lab.env.timeout(5.0)

    appset = applicationset_yaml("services", lab.repo.url, "services/*")
    start_v = lab.now
    t0 = time.perf_counter()
    lab.argo.apply(appset, file="argocd/services-appset.yaml")
    lab.env.process(sampler())
    healthy = workload_controllers  # without workload controllers nothing ever reports a Deployment available
    done = lab.run_until(lambda: _all_synced(lab, services, healthy=healthy), timeout=3600, step=1)
    res.reconcile_all_wall_s = time.perf_counter() - t0
    res.reconcile_all_virtual_s = None if done is None else round(done - start_v, 3)
    res.applications = len(_apps(lab))
    res.objects = _managed_objects(lab)
    res.marks["all_synced"] = lab.now
    lab.advance(30)

    # add a service: a directory
    new = service_name(services)
    res.marks["added"] = lab.now
    lab.commit(service_files(f"services/{new}", new, kustomize=kustomize), f"services: add {new}", author="dev")
    t = lab.run_until(lambda: _app_synced(lab, new, healthy=healthy), timeout=600, step=1)
    res.new_app_after_s = None if t is None else t - res.marks["added"]
    lab.advance(30)

    # remove a service: delete its directory
    gone = service_name(0)
    res.marks["removed"] = lab.now
    lab.commit({p: None for p in service_files(f"services/{gone}", gone, kustomize=kustomize)},
               f"services: retire {gone}", author="dev")

    def removed() -> bool:
        return (lab.argo.app(gone) is None and lab.get("apps/v1", "Deployment", gone, FLEET_NS) is None
                and lab.get("v1", "ConfigMap", gone, FLEET_NS) is None)

    t = lab.run_until(removed, timeout=600, step=1)
    res.removed_app_after_s = None if t is None else t - res.marks["removed"]
    lab.advance(30)
    res.progress = pd.DataFrame(progress, columns=["time", "applications", "synced_healthy"])
    if models:
        res.models = compare_models(seed=seed, services=model_services, teams=teams)
    if fault_rate > 0:
        from labkit.faults.argo import run_fleet_under_faults

        calm = run_fleet_under_faults(services, 0.0, seed=seed)
        stormy = run_fleet_under_faults(services, float(fault_rate), seed=seed)
        res.faults = {
            "fault_rate": float(fault_rate),
            "faults_injected": stormy.faults,
            "faults_converged_virtual_s": stormy.converged_at,
            "faults_extra_virtual_s": None if None in (calm.converged_at, stormy.converged_at)
            else stormy.converged_at - calm.converged_at,
            "faults_extra_wall_s": round(stormy.wall_s - calm.wall_s, 3),
            "faults_objects_lost": len(stormy.lost),
            "faults_objects_wrongly_deleted": len(stormy.wrongly_deleted),
        }
    return res


# ------------------------------------------------------------------ part 2: repository-structure models

@dataclass
class _Model:
    """One repository layout: how to lay it out, how to promote one service, how to change all of prod."""

    name: str
    lab: AppLab
    repos: dict[str, ManifestRepo]
    services: list[str]
    team_of: dict[str, str]
    apply_objects: Callable[["_Model"], None]
    promote: Callable[["_Model", str, str], list[tuple[ManifestRepo, str]]]
    fleet_change: Callable[["_Model", str], list[tuple[ManifestRepo, str]]]
    expected_apps: int


def _commit(repo: ManifestRepo, lab: AppLab, changes: dict[str, str | None], message: str) -> tuple[ManifestRepo, str]:
    return repo, repo.commit(changes, message=message, author="dev", when=lab.now)


def _edit_yaml(repo: ManifestRepo, path: str, fn: Callable[[dict], None]) -> str:
    obj = yaml.safe_load(repo.read(path))
    fn(obj)
    return yaml.safe_dump(obj, sort_keys=False)


def _set_image(tag: str) -> Callable[[dict], None]:
    def fn(d: dict) -> None:
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["image"] = c["image"].rsplit(":", 1)[0] + f":{tag}"
    return fn


def _set_level(level: str) -> Callable[[dict], None]:
    def fn(d: dict) -> None:
        d["data"]["LOG_LEVEL"] = level
    return fn


def _plain_dirs_promote(path_of: Callable[[_Model, str, str], tuple[ManifestRepo, str]]):
    def promote(m: _Model, svc: str, tag: str) -> list[tuple[ManifestRepo, str]]:
        repo, d = path_of(m, svc, "prod")
        text = _edit_yaml(repo, f"{d}/deployment.yaml", _set_image(tag))
        return [_commit(repo, m.lab, {f"{d}/deployment.yaml": text}, f"{svc}: promote {tag} to prod")]
    return promote


def _plain_dirs_fleet(path_of: Callable[[_Model, str, str], tuple[ManifestRepo, str]]):
    def change(m: _Model, level: str) -> list[tuple[ManifestRepo, str]]:
        per_repo: dict[str, dict[str, str | None]] = {}
        for svc in m.services:
            repo, d = path_of(m, svc, "prod")
            per_repo.setdefault(repo.name, {})[f"{d}/configmap.yaml"] = _edit_yaml(repo, f"{d}/configmap.yaml",
                                                                                  _set_level(level))
        return [_commit(m.repos[r], m.lab, ch, f"prod: LOG_LEVEL={level} for every service")
                for r, ch in per_repo.items()]
    return change


def _build_model(name: str, *, seed: int, services: int, teams: int) -> _Model:
    lab = AppLab("argo", seed=seed)
    svcs = [service_name(i) for i in range(services)]
    team_of = {s: f"team-{i % teams}" for i, s in enumerate(svcs)}
    url = lab.repo.url
    if name == "app-of-apps":
        files: dict[str, str] = {}
        for env in ENVIRONMENTS:
            for s in svcs:
                files.update(service_files(f"services/{s}/{env}", s))
                app = app_template(url, f"services/{s}/{env}", env, name=f"{s}-{env}")
                files[f"apps/{env}/{s}.yaml"] = yaml_docs({"apiVersion": APP_API, "kind": "Application",
                                                           "metadata": dict(app["metadata"], namespace="argocd"),
                                                           "spec": app["spec"]})
        lab.commit(files, "app-of-apps layout", author="platform")

        def apply(m: _Model) -> None:
            for env in ENVIRONMENTS:
                root = app_template(url, f"apps/{env}", "argocd", name=f"root-{env}", finalizer=False)
                m.lab.argo.apply({"apiVersion": APP_API, "kind": "Application",
                                  "metadata": dict(root["metadata"], namespace="argocd"), "spec": root["spec"]},
                                 file=f"root-{env}.yaml")

        path_of = lambda m, s, env: (m.repos["app"], f"services/{s}/{env}")  # noqa: E731
        return _Model(name, lab, {"app": lab.repo}, svcs, team_of, apply, _plain_dirs_promote(path_of),
                      _plain_dirs_fleet(path_of), 2 * services + 2)
    if name == "per-team-repos":
        repos: dict[str, ManifestRepo] = {}
        for k in range(teams):
            team = f"team-{k}"
            repo = ManifestRepo(lab.workdir / team, log=lab.log, name=team, url=f"https://github.com/labkit/{team}")
            lab.argo.add_repo(repo)
            lab.argo.enable_webhook(repo)
            files = {}
            for s in svcs:
                if team_of[s] == team:
                    for env in ENVIRONMENTS:
                        files.update(service_files(f"{s}/{env}", s))
            repo.commit(files, message=f"{team} services", author="platform", when=lab.now)
            repos[team] = repo

        def apply(m: _Model) -> None:
            for team, repo in m.repos.items():
                aset = applicationset_yaml(team, repo.url, "*/*", app_name="{{path[0]}}-{{path[1]}}",
                                           namespace="{{path[1]}}")
                m.lab.argo.apply(aset, file=f"{team}-appset.yaml")

        path_of = lambda m, s, env: (m.repos[m.team_of[s]], f"{s}/{env}")  # noqa: E731
        return _Model(name, lab, repos, svcs, team_of, apply, _plain_dirs_promote(path_of),
                      _plain_dirs_fleet(path_of), 2 * services)
    if name == "applicationset":
        files = {}
        for env in ENVIRONMENTS:
            for s in svcs:
                files.update(service_files(f"services/{env}/{s}", s))
        lab.commit(files, "fleet repository layout", author="platform")

        def apply(m: _Model) -> None:
            m.lab.argo.apply(applicationset_yaml("fleet", url, "services/*/*", app_name="{{path.basename}}-{{path[1]}}",
                                                 namespace="{{path[1]}}"), file="fleet-appset.yaml")

        path_of = lambda m, s, env: (m.repos["app"], f"services/{env}/{s}")  # noqa: E731
        return _Model(name, lab, {"app": lab.repo}, svcs, team_of, apply, _plain_dirs_promote(path_of),
                      _plain_dirs_fleet(path_of), 2 * services)
    if name == "monorepo-overlays":
        files = {}
        for s in svcs:
            files.update(service_files(f"base/{s}", s, kustomize=True))
        for env in ENVIRONMENTS:
            files[f"envs/{env}/kustomization.yaml"] = yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": env,
                "resources": [f"../../base/{s}" for s in svcs],
                "images": [{"name": f"{IMAGE_PREFIX}/{s}", "newTag": "1.0.0"} for s in svcs]}, sort_keys=False)
        lab.commit(files, "monorepo with overlays", author="platform")

        def apply(m: _Model) -> None:
            for env in ENVIRONMENTS:
                app = app_template(url, f"envs/{env}", env, name=f"fleet-{env}")
                m.lab.argo.apply({"apiVersion": APP_API, "kind": "Application",
                                  "metadata": dict(app["metadata"], namespace="argocd"), "spec": app["spec"]},
                                 file=f"fleet-{env}.yaml")

        def promote(m: _Model, svc: str, tag: str) -> list[tuple[ManifestRepo, str]]:
            path = "envs/prod/kustomization.yaml"

            def fn(k: dict) -> None:
                for img in k["images"]:
                    if img["name"] == f"{IMAGE_PREFIX}/{svc}":
                        img["newTag"] = tag
            return [_commit(m.repos["app"], m.lab, {path: _edit_yaml(m.repos["app"], path, fn)},
                            f"{svc}: promote {tag} to prod")]

        def change(m: _Model, level: str) -> list[tuple[ManifestRepo, str]]:
            path = "envs/prod/kustomization.yaml"

            def fn(k: dict) -> None:
                k.setdefault("patches", []).append({
                    "target": {"kind": "ConfigMap"},
                    "patch": f'[{{"op": "replace", "path": "/data/LOG_LEVEL", "value": "{level}"}}]'})
            return [_commit(m.repos["app"], m.lab, {path: _edit_yaml(m.repos["app"], path, fn)},
                            f"prod: LOG_LEVEL={level} for every service")]

        return _Model(name, lab, {"app": lab.repo}, svcs, team_of, apply, promote, change, 2)
    raise LabkitError(f"unknown repository model {name!r}: one of {', '.join(MODELS)}", field="model")


def _files_touched(repo: ManifestRepo, sha: str) -> int:
    out = repo.git.git.diff_tree("--no-commit-id", "--name-only", "-r", sha)
    return len([line for line in out.splitlines() if line.strip()])


def _work(lab: AppLab, commits: list[tuple[ManifestRepo, str]], since: float) -> dict[str, int]:
    shas = {sha for _, sha in commits}
    refreshed = [e for e in lab.events(component="argocd-application-controller", event="Refreshed", since=since)
                 if e.revision in shas]
    sizes = {}
    for a in _apps(lab):
        sizes[f"Application/argocd/{a['metadata']['name']}"] = len((a.get("status") or {}).get("resources") or [])
    applied = lab.events(component="argocd-application-controller", event="ResourceApplied", since=since)
    return {"refreshes": len(refreshed), "objects_compared": sum(sizes.get(e.object, 0) for e in refreshed),
            "objects_applied": len(applied)}


def compare_models(*, seed: int = 0, services: int = 20, teams: int = 4, window_s: float = 90.0) -> pd.DataFrame:
    """Build each repository model, sync it, then promote one service and change all of prod (see docstring)."""
    rows = []
    for name in MODELS:
        m = _build_model(name, seed=seed, services=services, teams=teams)
        lab = m.lab
        m.apply_objects(m)
        lab.run_until(lambda: _all_synced(lab, m.expected_apps), timeout=1800, step=5)
        lab.advance(30)
        t = lab.now
        promo = m.promote(m, m.services[0], "1.1.0")
        lab.run_until(lambda: lab.now >= t + window_s and _all_synced(lab), timeout=900, step=5)
        promo_work = _work(lab, promo, t)
        lab.advance(30)
        t2 = lab.now
        fleet = m.fleet_change(m, "warn")
        lab.run_until(lambda: lab.now >= t2 + window_s and _all_synced(lab), timeout=900, step=5)
        fleet_work = _work(lab, fleet, t2)
        per_commit = {k: v / max(1, len(fleet)) for k, v in fleet_work.items()}
        rows.append({
            "model": name,
            "repositories": len(m.repos),
            "applications": len(_apps(lab)),
            "files_per_promotion": sum(_files_touched(r, s) for r, s in promo),
            "commits_per_promotion": len(promo),
            "files_per_fleet_change": sum(_files_touched(r, s) for r, s in fleet),
            "commits_per_fleet_change": len(fleet),
            "refreshes_per_commit": promo_work["refreshes"],
            "objects_compared_per_commit": promo_work["objects_compared"],
            "objects_applied_per_commit": promo_work["objects_applied"],
            "fleet_change_refreshes": fleet_work["refreshes"],
            "fleet_change_objects_applied": fleet_work["objects_applied"],
            "fleet_change_objects_compared_per_commit": round(per_commit["objects_compared"], 1),
        })
        for repo in m.repos.values():
            if repo is not lab.repo:
                repo.close()
        lab.close()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ figures

def plot_fleet(result: FleetResult) -> plt.Figure:
    """Applications generated and Synced+Healthy over virtual time, with the add/remove commits."""
    p = result.progress
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(p.time, p.applications, label="Applications generated", color="tab:blue")
    ax.plot(p.time, p.synced_healthy, label="Synced and Healthy", color="tab:green")
    for key, label, color in (("added", "service directory added", "tab:purple"),
                              ("removed", "service directory removed", "tab:red")):
        if key in result.marks:
            ax.axvline(result.marks[key], color=color, linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("seconds (virtual time)")
    ax.set_ylabel("Applications")
    ax.set_title(f"ApplicationSet over {result.services} services ({result.source_type} sources; first full sync "
                 f"{result.reconcile_all_wall_s:.1f} s wall)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_models(models: pd.DataFrame) -> plt.Figure:
    """Per repository model: files and commits per change, and reconcile work per commit."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = range(len(models))
    labels = list(models.model)
    w = 0.38
    ax = axes[0]
    ax.bar([i - w / 2 for i in x], models.files_per_promotion, w, label="promotion of one service")
    ax.bar([i + w / 2 for i in x], models.files_per_fleet_change, w, label="change to every prod service")
    ax.set_title("files touched")
    ax.set_ylabel("files")
    ax = axes[1]
    ax.bar([i - w / 2 for i in x], models.commits_per_promotion, w, label="promotion of one service")
    ax.bar([i + w / 2 for i in x], models.commits_per_fleet_change, w, label="change to every prod service")
    ax.set_title("commits")
    ax.set_ylabel("commits")
    ax = axes[2]
    ax.bar([i - w / 2 for i in x], models.objects_compared_per_commit, w, label="objects compared")
    ax.bar([i + w / 2 for i in x], models.objects_applied_per_commit, w, label="objects applied")
    ax.set_title("reconcile work of one promotion commit")
    ax.set_ylabel("objects")
    for ax in axes:
        ax.set_xticks(list(x), labels, rotation=20, ha="right", fontsize=8)
        ax.set_xlabel("repository model")
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Repository structure: what one change costs")
    fig.tight_layout()
    return fig
