"""tour exercises: one change through the whole reconcile loop, on the sample fleet.

The folder is the fleet repository (``labkit.workshop.fleet_replay``): the
``staging/`` and ``prod/`` cluster folders Flux was bootstrapped from and the
podinfo app in ``apps/podinfo/`` (a base and one overlay per environment).  The
judge replays the participant's commits into a fresh ``FleetLab`` (first push
at t = 1 min, then one every 5 simulated minutes) and lets Flux fetch, build
(real kustomize), plan, apply, prune and health-check them.

* ``tour-first-release`` — ship podinfo 6.5.1 to staging only;
* ``tour-webhook`` — a developer's commits reach staging within 15 s of the
  push, without polling git more than once a minute;
* ``tour-prune`` — retire staging's podinfo Service through git (Flux prunes it).
"""
from __future__ import annotations

import yaml

from labkit.workshop.fleet_replay import (FleetReplay, add_receiver, deliveries, failures, fleet_files, pod_problem,
                                          podinfo_status, set_in_yaml, webhook_story)
from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.yamltext import yaml_dump

SCENARIO = "tour"
FIRST_AT, GAP = 60.0, 300.0
STAGING_OVERLAY = "apps/podinfo/staging/kustomization.yaml"
PROD_OVERLAY = "apps/podinfo/prod/kustomization.yaml"
BASE_DEPLOYMENT = "apps/podinfo/base/deployment.yaml"
BASE_KUSTOMIZATION = "apps/podinfo/base/kustomization.yaml"
GOTK_STAGING = "staging/flux-system/gotk-sync.yaml"
APPS_STAGING = "staging/apps.yaml"
PODINFO = "ghcr.io/stefanprodan/podinfo"
APPS = "Kustomization/flux-system/apps"


def _readme(title: str, body: str) -> str:
    return (f"# {title}\n\n{body}\n\nThis folder is the fleet repository Flux was bootstrapped from: `staging/` and "
            "`prod/` are the two clusters (their `flux-system` objects and the `apps` Kustomization), "
            "`apps/podinfo/` is the app (a base and one overlay per environment). Commit, then run "
            "`labkit check <exercise>`.\n")


def _start(title: str, body: str):
    def start() -> dict[str, str]:
        files = fleet_files()
        files["README.md"] = _readme(title, body)
        return files
    return start


def _set_tag(path: str, tag: str):
    def edit(files):
        k = yaml.safe_load(files[path])
        for img in k.get("images") or []:
            if img.get("name") == PODINFO:
                img["newTag"] = tag
        return {path: yaml_dump(k, sort_keys=False)}
    return edit


def _first_failure(lab, env: str, since: float) -> str:
    f = [r for r in failures(lab, env, since) if r["object"] in (APPS, "Kustomization/flux-system/flux-system")]
    if not f:
        return ""
    r = f[-1]
    return f"{r['object'].split('/')[-1]} Kustomization: {r['reason']}: {r['message']}"


# ---------------------------------------------------------------------- tour-first-release

def _judge_first_release(history: History) -> Verdict:
    ex_id = "tour-first-release"
    rep = FleetReplay.run(history, first_at=FIRST_AT, gap=GAP, environments=("staging", "prod"))
    lab = rep.lab
    try:
        end = (rep.pushed_at[-1] if rep.pushed_at else FIRST_AT) + 600.0  # past a 5m health timeout
        lab.run(end)
        st, pr = podinfo_status(lab, "staging"), podinfo_status(lab, "prod")
        figures = {"staging_tag": st["tag"], "staging_ready": st["ready"], "staging_status": st["status"],
                   "prod_tag": pr["tag"], "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: staging runs podinfo {st['tag']}", figures=figures)
        since = rep.pushed_at[0]
        failed = _first_failure(lab, "staging", since)
        if pr["tag"] != "6.5.0":
            return Verdict(ex_id, False, f"prod changed too: prod's podinfo now specifies {pr['tag']} (goal: prod "
                           f"stays on 6.5.0 until staging has run the release); staging specifies {st['tag']}",
                           figures=figures)
        if st["tag"] != "6.5.1":
            applied = [e for e in lab.cluster("staging").log.filter(event="Applied", object=APPS, since=since)]
            what = ""
            if applied and not failed:
                what = (f" — kustomize-controller applied your revision and podinfo's Deployment still renders "
                        f"with {PODINFO}:{st['tag']}")
            problem = pod_problem(lab, "staging")
            extra = f"; its new pods: {problem}" if problem and st["status"] != "Current" else ""
            return Verdict(ex_id, False, f"staging's podinfo specifies {st['tag']}, not 6.5.1{what}{extra}"
                           + (f"; {failed}" if failed else ""), figures=figures)
        if st["status"] != "Current":
            problem = pod_problem(lab, "staging")
            return Verdict(ex_id, False, f"staging's podinfo specifies 6.5.1 but the rollout did not complete "
                           f"({st['ready']} of {st['replicas']} ready){'; ' + problem if problem else ''}"
                           + (f"; {failed}" if failed else ""), figures=figures)
        ready = lab.ready("staging")
        return Verdict(ex_id, True, f"staging runs podinfo 6.5.1 on {st['ready']} of {st['replicas']} replicas "
                       f"(rollout complete, apps {ready.get('reason', '?')}); prod still runs 6.5.0",
                       figures=figures)
    finally:
        lab.close()


# ---------------------------------------------------------------------- tour-webhook

LATENCY_GOAL = 15.0
MIN_POLL = 60.0
DEV_TAGS = ("6.5.1", "6.5.2", "6.5.3")


def _judge_webhook(history: History) -> Verdict:
    from labkit.core.clock import rng_for
    from labkit.core.duration import parse_duration

    ex_id = "tour-webhook"
    rep = FleetReplay.run(history, first_at=FIRST_AT, gap=GAP)
    lab = rep.lab
    try:
        log = lab.cluster().log
        since = rep.pushed_at[0] if rep.pushed_at else 0.0
        lab.run(lab.now + 120.0)  # the platform change settles
        rng = rng_for(0, "developer")
        waits = []
        for tag in DEV_TAGS:
            lab.advance(rng.uniform(30.0, 200.0))
            sha = lab.set_image("staging", tag, author="alice", message=f"podinfo staging: {tag}")
            t0 = lab.now
            lab.run_until(lambda: lab.applied_revision().endswith(sha), timeout=900.0)
            applied = [e.time for e in log.filter(event="Applied", object=APPS, since=t0) if e.revision.endswith(sha)]
            waits.append(round(applied[0] - t0, 1) if applied else None)
        window = lab.now - since
        fetches = len(log.filter(component="source-controller", event="Fetched", since=since))
        repo_obj = lab.cluster().get("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system")
        interval = parse_duration(str(((repo_obj or {}).get("spec") or {}).get("interval", "1m")))
        d = deliveries(lab, "staging", since)
        worst = max((w if w is not None else float("inf")) for w in waits)
        shown = ", ".join("never" if w is None else f"{w:.0f} s" for w in waits)
        figures = {"commit_to_applied_s": waits, "poll_interval_s": interval, "fetches": fetches,
                   "window_s": round(window), "webhook": d, "commits": len(history.commits)}
        head = f"push to applied for the developer's {len(waits)} commits: {shown}"
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: {head} (goal: each within {LATENCY_GOAL:.0f} s)",
                           figures=figures)
        if interval < MIN_POLL:
            return Verdict(ex_id, False, f"{head}, but the GitRepository polls every {interval:.0f} s: "
                           f"source-controller fetched git {fetches} times in {window / 60:.0f} simulated minutes "
                           f"(goal: poll no more often than once a minute)", figures=figures)
        if worst > LATENCY_GOAL:
            failed = _first_failure(lab, "staging", since)
            return Verdict(ex_id, False, f"{head} — over the {LATENCY_GOAL:.0f}-second goal; {webhook_story(d)}"
                           + (f"; {failed}" if failed else ""), figures=figures)
        return Verdict(ex_id, True, f"{head} (goal ≤ {LATENCY_GOAL:.0f} s) with the GitRepository polling every "
                       f"{interval:.0f} s; {webhook_story(d)}", figures=figures)
    finally:
        lab.close()


# ---------------------------------------------------------------------- tour-prune

def _service(lab, env: str):
    return lab.cluster(env).get("v1", "Service", "podinfo", f"podinfo-{env}")


def _judge_prune(history: History) -> Verdict:
    ex_id = "tour-prune"
    rep = FleetReplay.run(history, first_at=FIRST_AT, gap=GAP, environments=("staging", "prod"))
    lab = rep.lab
    try:
        end = (rep.pushed_at[-1] if rep.pushed_at else FIRST_AT) + 420.0
        lab.run(end)
        since = rep.pushed_at[0] if rep.pushed_at else 0.0
        st = podinfo_status(lab, "staging")
        svc_staging, svc_prod = _service(lab, "staging"), _service(lab, "prod")
        deleted = [e for e in lab.cluster("staging").log.filter(component="api", event="Deleted", since=since)
                   if e.object.startswith("Service/") and e.object.endswith("/podinfo")]
        figures = {"staging_service": svc_staging is not None, "prod_service": svc_prod is not None,
                   "staging_ready": st["ready"], "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex_id, False, "no commit yet: staging still has Service podinfo-staging/podinfo",
                           figures=figures)
        failed = _first_failure(lab, "staging", since)
        if svc_prod is None:
            return Verdict(ex_id, False, "prod's podinfo Service was deleted too (prod's Flux pruned it): the goal "
                           "retires it in staging only", figures=figures)
        if svc_staging is not None:
            return Verdict(ex_id, False, "staging still has Service podinfo-staging/podinfo"
                           + (f"; {failed}" if failed else " — your revision was applied and still renders it"),
                           figures=figures)
        if st["status"] != "Current" or st["ready"] < st["replicas"]:
            return Verdict(ex_id, False, f"the Service is gone, but podinfo itself is not healthy in staging "
                           f"({st['ready']} of {st['replicas']} ready)", figures=figures)
        when = f" at t={deleted[0].time:.0f}s ({deleted[0].time - since:.0f} s after your push)" if deleted else ""
        return Verdict(ex_id, True, f"Flux pruned Service podinfo-staging/podinfo{when}; prod keeps its Service; "
                       f"podinfo still runs {st['ready']} of {st['replicas']} replicas in staging", figures=figures)
    finally:
        lab.close()


DELETE_SERVICE = "$patch: delete\napiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n"


def _delete_patch(files):
    k = yaml.safe_load(files[STAGING_OVERLAY])
    k.setdefault("patches", []).append({"path": "delete-service.yaml"})
    return {"apps/podinfo/staging/delete-service.yaml": DELETE_SERVICE,
            STAGING_OVERLAY: yaml_dump(k, sort_keys=False)}


def _drop_from_base(files):
    k = yaml.safe_load(files[BASE_KUSTOMIZATION])
    k["resources"] = [r for r in k["resources"] if r != "service.yaml"]
    return {BASE_KUSTOMIZATION: yaml_dump(k, sort_keys=False)}


def _interval(path: str, kind: str, value: str):
    def edit(files):
        return {path: set_in_yaml(files[path], kind, lambda d: d["spec"].__setitem__("interval", value))}
    return edit


EXERCISES = (
    Exercise(
        id="tour-first-release",
        scenario=SCENARIO,
        title="Your first release: a commit, not a kubectl",
        goal="staging runs podinfo 6.5.1 on all its replicas (rollout complete, the apps Kustomization Ready) "
             "while prod stays on 6.5.0 — within 10 simulated minutes of your commit.",
        task="Change the image tag staging deploys in fleet/tour-first-release/ (which file decides it?), commit, "
             "then `labkit check tour-first-release`.",
        start=_start("tour-first-release", "Ship podinfo 6.5.1 to staging, and only to staging."),
        judge=_judge_first_release,
        solution=Change("set newTag in the staging overlay", "podinfo staging: 6.5.1",
                        _set_tag(STAGING_OVERLAY, "6.5.1")),
        wrong=(
            Change("edit the base Deployment's image", "podinfo: 6.5.1",
                   lambda files: {BASE_DEPLOYMENT: files[BASE_DEPLOYMENT].replace(f"{PODINFO}:6.5.0",
                                                                                  f"{PODINFO}:6.5.1")},
                   expect="not 6.5.1"),
            Change("a typo in the tag", "podinfo staging: 6.5.10", _set_tag(STAGING_OVERLAY, "6.5.10"),
                   expect="ImagePullBackOff"),
            Change("both overlays at once", "podinfo: 6.5.1 everywhere",
                   lambda files: {**_set_tag(STAGING_OVERLAY, "6.5.1")(files),
                                  **_set_tag(PROD_OVERLAY, "6.5.1")(files)},
                   expect="prod changed too"),
        ),
        hints=("Flux deploys staging from `./apps/podinfo/staging` (see staging/apps.yaml): that overlay builds the "
               "base and then changes it.",
               "The overlay's `images:` entry sets the tag (kustomize's `newTag`) and wins over the base's "
               "`image:` line.",
               "In apps/podinfo/staging/kustomization.yaml set `newTag: 6.5.1` (what `kustomize edit set image "
               "ghcr.io/stefanprodan/podinfo:6.5.1` writes), then commit."),
        minutes=10,
    ),
    Exercise(
        id="tour-webhook",
        scenario=SCENARIO,
        title="Poll or push: a commit in staging within 15 seconds",
        goal=f"Each of a developer's 3 commits is applied in staging within {LATENCY_GOAL:.0f} s of its push, while "
             "the GitRepository still polls git no more often than once a minute (the git host rate-limits).",
        task="Change the Flux set-up in fleet/tour-webhook/staging/ and commit. The git host already sends push "
             "webhooks to notification-controller for a Receiver named `github-receiver` in `flux-system`, signed "
             "with the token in the Secret `webhook-token` (created by the platform team).",
        start=_start("tour-webhook", "Make a developer's commit reach staging within 15 seconds of the push."),
        judge=_judge_webhook,
        solution=Change("a github Receiver for the flux-system GitRepository", "staging: push webhook Receiver",
                        lambda files: add_receiver(files, "staging")),
        wrong=(
            Change("poll every 10 s", "staging: poll git every 10s",
                   _interval(GOTK_STAGING, "GitRepository", "10s"), expect="polls every 10 s"),
            Change("shorten the apps Kustomization's interval", "staging: apps every 10s",
                   _interval(APPS_STAGING, "Kustomization", "10s"), expect="over the 15-second goal"),
            Change("a Receiver file that is never applied", "staging: add receiver.yaml",
                   lambda files: add_receiver(files, "staging", listed=False), expect="404"),
            Change("a Receiver for ping events only", "staging: webhook Receiver",
                   lambda files: add_receiver(files, "staging", events=["ping"]), expect="not authorised"),
        ),
        hints=("Which object decides when Flux sees a new commit: the GitRepository (source-controller) or the apps "
               "Kustomization? Polling faster costs git fetches.",
               "A Flux `Receiver` (notification.toolkit.fluxcd.io/v1, type github) turns the git host's push "
               "webhook into an immediate reconcile of the GitRepositories it lists. Flux applies only what the "
               "flux-system folder's kustomization.yaml lists.",
               "Add staging/flux-system/receiver.yaml: kind Receiver, name github-receiver, namespace flux-system, "
               "spec {type: github, events: [ping, push], secretRef: {name: webhook-token}, resources: "
               "[{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: flux-system}]}, and add "
               "`receiver.yaml` to staging/flux-system/kustomization.yaml's resources."),
        minutes=15,
    ),
    Exercise(
        id="tour-prune",
        scenario=SCENARIO,
        title="Delete by committing: Flux prunes what leaves git",
        goal="Service podinfo-staging/podinfo is gone from staging (pruned by Flux within 7 simulated minutes of "
             "your commit), prod keeps its podinfo Service, and podinfo keeps running in staging.",
        task="Change fleet/tour-prune/apps/podinfo/ so staging's build no longer contains the Service (without "
             "touching prod's), commit, then `labkit check tour-prune`.",
        start=_start("tour-prune", "Nothing calls podinfo in staging any more: retire its Service there."),
        judge=_judge_prune,
        solution=Change("a $patch: delete in the staging overlay", "podinfo staging: no Service", _delete_patch),
        wrong=(
            Change("delete base/service.yaml only", "podinfo: remove the Service",
                   lambda files: {"apps/podinfo/base/service.yaml": None}, expect="kustomize build failed"),
            Change("drop the Service from the base", "podinfo: no Service", _drop_from_base,
                   expect="prod's podinfo Service was deleted too"),
        ),
        hints=("Flux deletes (prunes) what it applied before and no longer finds in the build — `prune: true` in "
               "staging/apps.yaml. So make the Service leave staging's build, not prod's.",
               "The base is shared by both overlays. The staging overlay can remove a resource with a patch whose "
               "body carries `$patch: delete`.",
               "Add apps/podinfo/staging/delete-service.yaml with `$patch: delete`, apiVersion v1, kind Service, "
               "metadata.name podinfo, and list it under `patches: - path: delete-service.yaml` in the staging "
               "overlay's kustomization.yaml."),
        minutes=10,
    ),
)
