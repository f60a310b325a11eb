"""hpa-conflict exercises: make GitOps and the HorizontalPodAutoscaler stop fighting over ``spec.replicas``.

The folder is the scenario's repository: ``app/`` (Namespace, Deployment with
``replicas: 3``, HPA 2–10 at 60 % CPU) and ``gitops/web.yaml`` (the Flux
Kustomization or Argo CD Application).  The judge replays the participant's
commits at t = 5 min, then plays the scenario's load: 170 m at rest, a spike
to 900 m from t = 10 min for 30 minutes, and a routine release (an image tag
bump by a colleague, made on whatever is in git then) half-way through the
spike.  It watches every write to ``spec.replicas`` (``ReplicaProbe``) and
counts **overrides**: a write by the GitOps field manager that changed
``spec.replicas`` while the HPA's manager owned it — either direction (pinning
10 in git fights the HPA just as much as 3).  Solved: no override from the
first participant commit on, and the HPA still scaled above git's 3.
"""
from __future__ import annotations

import yaml

from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.replay import AppReplay, argo_gitops_yaml, flux_gitops_yaml

SCENARIO = "hpa-conflict"
FIX_AT = 300.0
SPIKE_START, SPIKE_DURATION, UNTIL = 600.0, 1800.0, 3600.0
GITOPS = "gitops/web.yaml"
DEPLOYMENT = "app/deployment.yaml"


def _start_files(dialect: str) -> dict[str, str]:
    from labkit.scenarios.hpa_conflict import APP, NAMESPACE, app_files

    files = dict(app_files())
    if dialect == "flux":
        files[GITOPS] = flux_gitops_yaml(APP, "app", interval="5m")
    else:
        files[GITOPS] = argo_gitops_yaml(APP, "app", NAMESPACE)
    files["README.md"] = (f"# {SCENARIO}: {dialect}\n\n`app/` is what the {dialect} controller deploys; "
                          f"`{GITOPS}` is the {'Kustomization' if dialect == 'flux' else 'Application'} "
                          "the platform team applies.\n")
    return files


def _judge(dialect: str, ex_id: str):
    def judge(history: History) -> Verdict:
        from labkit.scenarios.hpa_conflict import (HPA_MANAGER, IMAGE, NAMESPACE, TAGS, APP, HpaResult,
                                                   ReplicaProbe)
        from labkit.sim.load import LoadModel, Spike
        from labkit.sim.registry import ImageRegistry

        spike = Spike(170.0, 900.0, SPIKE_START, SPIKE_DURATION, ramp=120.0)
        load = LoadModel(seed=0)
        load.set(f"{NAMESPACE}/{APP}", spike)
        registry = ImageRegistry()
        registry.add(IMAGE, list(TAGS))
        # every commit lands before the spike, however many there are; what is judged is the last one
        gap = min(30.0, (SPIKE_START - 60.0 - FIX_AT) / max(1, len(history.commits)))
        rep = AppReplay.run(history, dialect=dialect, first_at=FIX_AT, gap=gap, registry=registry, load=load,
                            on_start=ReplicaProbe)
        lab = rep.lab
        try:
            if rep.refused:
                return Verdict(ex_id, False, f"the controller refused your change: {rep.refused[0]}")
            lab.run(SPIKE_START + SPIKE_DURATION / 2)
            rep.release(DEPLOYMENT, f"{IMAGE}:{TAGS[0]}", f"{IMAGE}:{TAGS[1]}", message=f"web: release {TAGS[1]}")
            release_at = lab.now
            lab.run(UNTIL)
            result = HpaResult(lab, dialect, "exercise", "client-side", spike)
            changes = result.changes()
            since = rep.pushed_at[-1] if rep.pushed_at else 0.0  # from the answer on (earlier tries do not count)
            gm = lab.field_manager()
            fights = changes[(changes.time >= since) & (changes.manager == gm)
                             & changes.owners_before.str.contains(HPA_MANAGER) & (changes["from"] != changes.to)]
            metrics = result.metrics()
            max_r = metrics["max_replicas"] or 0
            dep = lab.get("apps/v1", "Deployment", APP, NAMESPACE) or {}
            running = ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", [{}])[0]
            released = running.get("image") == f"{IMAGE}:{TAGS[1]}"
            figures = {"overrides": int(len(fights)), "max_replicas": max_r, "release_at_s": release_at,
                       "commits": len(history.commits), "release_deployed": released}
            if not history.commits:
                return Verdict(ex_id, False, f"no commit yet: {gm} overrode the HPA's replica count "
                               f"{_times(len(fights))} in {UNTIL / 60:.0f} simulated minutes", figures=figures)
            if not released:
                return Verdict(ex_id, False, f"the routine release ({IMAGE}:{TAGS[1]}, pushed at t={release_at:.0f}s) "
                               f"never reached the cluster: the Deployment still runs {running.get('image')} — "
                               "GitOps must keep delivering; stopping it also stops the fight, but that is no fix",
                               figures=figures)
            if max_r <= 3:
                return Verdict(ex_id, False, f"the HPA never scaled above 3 replicas (max {max_r}): the app must "
                               "still autoscale under the spike — is the HPA still in git?", figures=figures)
            if len(fights):
                first = fights.iloc[0]
                during = " (the routine release's sync)" if abs(first.time - release_at) < 120 else ""
                return Verdict(ex_id, False, f"{gm} still overrode the HPA {_times(len(fights))}: first at "
                               f"t={first.time:.0f}s{during}, spec.replicas {int(first['from'])} -> "
                               f"{int(first.to)}", figures=figures)
            return Verdict(ex_id, True, f"0 overrides of the HPA by {gm} from your commit to the end "
                           f"({UNTIL / 60:.0f} simulated minutes, a release included); the HPA scaled up to "
                           f"{max_r}", figures=figures)
        finally:
            lab.close()
    return judge


def _times(n: int) -> str:
    return f"{n} time{'' if n == 1 else 's'}"


def _edit_yaml(text: str, fn) -> str:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        fn(d)
    return yaml.safe_dump_all(docs, sort_keys=False)


def _ks(fn):
    def edit(files):
        return {GITOPS: _edit_yaml(files[GITOPS], lambda d: fn(d["spec"]) if d["kind"] == "Kustomization" else None)}
    return edit


def _app(fn):
    def edit(files):
        return {GITOPS: _edit_yaml(files[GITOPS], lambda d: fn(d["spec"]))}
    return edit


def _deployment(fn):
    def edit(files):
        return {DEPLOYMENT: _edit_yaml(files[DEPLOYMENT], lambda d: fn(d["spec"]))}
    return edit


FLUX_IGNORE = [{"paths": ["/spec/replicas"], "target": {"group": "apps", "kind": "Deployment"}}]
ARGO_RULE = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]

EXERCISES = (
    Exercise(
        id="hpa-flux-ignore",
        scenario=SCENARIO,
        title="Flux: let the HPA own replicas",
        goal="From your commit on, kustomize-controller never overrides the replica count the HPA set (0 overrides "
             "in 60 simulated minutes with a load spike and a routine release), the release still reaches the "
             "cluster, and the HPA still scales above 3.",
        task="Edit fleet/hpa-flux-ignore/ (the Deployment in app/ or the Kustomization in gitops/web.yaml), commit, "
             "then `labkit check hpa-flux-ignore`.",
        start=lambda: _start_files("flux"),
        judge=_judge("flux", "hpa-flux-ignore"),
        solution=Change("spec.ignore on /spec/replicas", "gitops: Flux ignores spec.replicas of Deployments",
                        _ks(lambda s: s.__setitem__("ignore", FLUX_IGNORE))),
        wrong=(
            Change("pin 10 replicas in git", "web: 10 replicas for the spike",
                   _deployment(lambda s: s.__setitem__("replicas", 10)), expect="still overrode the HPA"),
            Change("ignore a misspelt path", "gitops: ignore replica",
                   _ks(lambda s: s.__setitem__("ignore", [{"paths": ["/spec/replica"],
                                                           "target": {"group": "apps", "kind": "Deployment"}}])),
                   expect="still overrode the HPA"),
            Change("delete the HPA", "web: no autoscaling",
                   lambda files: {"app/hpa.yaml": None}, expect="never scaled above 3"),
            Change("suspend the Kustomization", "gitops: suspend Flux for the web app",
                   _ks(lambda s: s.__setitem__("suspend", True)), expect="never reached the cluster"),
        ),
        hints=("Two controllers write the same field: the HPA (kube-controller-manager) and Flux "
               "(kustomize-controller). One of them has to stop.",
               "Either git stops declaring the field (delete `replicas:` from the Deployment), or Flux is told to "
               "leave it alone: the Kustomization's `spec.ignore` takes JSON pointers and a target.",
               "spec.ignore: [{paths: [/spec/replicas], target: {group: apps, kind: Deployment}}]"),
        minutes=15,
    ),
    Exercise(
        id="hpa-argo-respect",
        scenario=SCENARIO,
        title="Argo CD: ignoreDifferences that survive a sync",
        goal="From your commit on, argocd-controller never overrides the replica count the HPA set — not even "
             "during the routine release's sync — the release still reaches the cluster, and the HPA still scales "
             "above 3.",
        task="Edit the Application in fleet/hpa-argo-respect/gitops/web.yaml (or the Deployment in app/), commit, "
             "then `labkit check hpa-argo-respect`.",
        start=lambda: _start_files("argo"),
        judge=_judge("argo", "hpa-argo-respect"),
        solution=Change("ignoreDifferences + RespectIgnoreDifferences", "gitops: Argo CD leaves replicas to the HPA",
                        _app(lambda s: (s.__setitem__("ignoreDifferences", ARGO_RULE),
                                        s["syncPolicy"].__setitem__("syncOptions", ["RespectIgnoreDifferences=true"])))),
        wrong=(
            Change("ignoreDifferences alone", "gitops: ignore replicas in the diff",
                   _app(lambda s: s.__setitem__("ignoreDifferences", ARGO_RULE)),
                   expect="the routine release's sync"),
            Change("turn self-heal off", "gitops: no self-heal",
                   _app(lambda s: s["syncPolicy"]["automated"].__setitem__("selfHeal", False)),
                   expect="still overrode the HPA"),
            Change("turn automated sync off", "gitops: sync by hand",
                   _app(lambda s: s["syncPolicy"].pop("automated")), expect="never reached the cluster"),
        ),
        hints=("Argo CD sees the HPA's write as drift (OutOfSync) and self-heal puts git's 3 back.",
               "`ignoreDifferences` hides /spec/replicas from the diff — but a sync still applies the whole manifest "
               "(argo-cd #7820). Which sync option makes a sync keep the live value of ignored fields?",
               "spec.syncPolicy.syncOptions: [RespectIgnoreDifferences=true], with the ignoreDifferences rule "
               "{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}"),
        minutes=15,
    ),
)
