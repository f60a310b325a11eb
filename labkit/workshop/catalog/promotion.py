"""promotion exercises: staging → prod by a commit to prod's overlay, gated by staging's health.

The folder is the fleet repository (``labkit.workshop.fleet_replay``); the
judge runs both clusters (staging and prod, each with its own Flux) on one
clock and watches podinfo's Deployment in each.

* ``promotion-validated-tag`` — the participant promotes 6.5.1: first to
  staging, then (a second commit, pushed 10 simulated minutes later) to prod.
  Judged from the clusters and the lab's git: prod runs 6.5.1; the commit that
  changed prod's image was pushed *after* staging ran 6.5.1 healthy; and that
  commit is in ``git log -- apps/podinfo/prod`` (the deploy record).
* ``promotion-health-gate`` — staging's ``apps`` Kustomization starts with
  ``wait: false`` (health checks off "to make deploys faster").  The scenario's
  promotion bot (``labkit.scenarios.promotion.PromotionBot``) promotes whatever
  staging reports Ready and blocks what fails its health check.  The judge
  plays a good release (6.5.1, at 10 min) and a bad one (6.5.99, a tag the
  registry does not have, at 25 min): the bad tag must never reach prod's
  overlay, the bot must block it within 10 minutes, and 6.5.1 must still reach
  prod.
"""
from __future__ import annotations

import yaml

from labkit.workshop.fleet_replay import (DeploymentTrace, FleetReplay, failures, fleet_files, pod_problem,
                                          podinfo_status, set_in_yaml)
from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.yamltext import yaml_dump

SCENARIO = "promotion"
PODINFO = "ghcr.io/stefanprodan/podinfo"
STAGING_OVERLAY = "apps/podinfo/staging/kustomization.yaml"
PROD_OVERLAY = "apps/podinfo/prod/kustomization.yaml"
PROD_PATH = "apps/podinfo/prod"
APPS_STAGING, APPS_PROD = "staging/apps.yaml", "prod/apps.yaml"
APPS = "Kustomization/flux-system/apps"


def _readme(title: str, body: str) -> str:
    return (f"# {title}\n\n{body}\n\n`staging/` and `prod/` are the two clusters' Flux folders; "
            "`apps/podinfo/staging` and `apps/podinfo/prod` are the overlays each cluster deploys. Commit, then "
            "run `labkit check <exercise>`.\n")


def _set_tag(path: str, tag: str):
    def edit(files):
        k = yaml.safe_load(files[path])
        for img in k.get("images") or []:
            if img.get("name") == PODINFO:
                img["newTag"] = tag
        return {path: yaml_dump(k, sort_keys=False)}
    return edit


def _ks(path: str, fn):
    def edit(files):
        return {path: set_in_yaml(files[path], "Kustomization", lambda d: fn(d["spec"]))}
    return edit


def _at(t: float | None) -> str:
    return "never" if t is None else f"t={t:.0f}s"


# ---------------------------------------------------------------------- promotion-validated-tag

TAG = "6.5.1"


def _judge_validated(history: History) -> Verdict:
    ex_id = "promotion-validated-tag"
    traces: dict[str, DeploymentTrace] = {}

    def on_start(lab):
        for env_name in ("staging", "prod"):
            traces[env_name] = DeploymentTrace(lab, env_name)

    rep = FleetReplay.run(history, first_at=60.0, gap=600.0, environments=("staging", "prod"), on_start=on_start)
    lab = rep.lab
    try:
        lab.run((rep.pushed_at[-1] if rep.pushed_at else 60.0) + 900.0)
        prod = podinfo_status(lab, "prod")
        valid_at = traces["staging"].first(tag=TAG, status="Current")
        prod_at = traces["prod"].first(tag=TAG)
        figures = {"staging_validated_at_s": valid_at, "prod_changed_at_s": prod_at, "prod_tag": prod["tag"],
                   "prod_ready": prod["ready"], "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: prod runs podinfo {prod['tag']}", figures=figures)
        since = rep.pushed_at[0]
        if prod_at is None:
            failed = [f for f in failures(lab, "prod", since) if f["object"] == APPS]
            staged = (f"staging validated {TAG} at {_at(valid_at)}" if valid_at is not None
                      else f"staging never ran {TAG} healthy either")
            return Verdict(ex_id, False, f"prod still runs podinfo {prod['tag']}: no commit changed prod's image "
                           f"to {TAG} ({staged})" + (f"; prod's apps: {failed[-1]['message']}" if failed else ""),
                           figures=figures)
        applied = [e for e in lab.cluster("prod").log.filter(event="Applied", object=APPS, since=prod_at - 1e-6)]
        sha = applied[0].revision.rsplit(":", 1)[-1] if applied else lab.repo.head()
        info = lab.repo.commit_info(sha)
        figures.update({"prod_commit": sha[:7], "prod_commit_at_s": info.time})
        if valid_at is None or info.time < valid_at:
            before = (f"staging ran {TAG} healthy only at {_at(valid_at)}" if valid_at is not None
                      else f"staging never ran {TAG} healthy")
            return Verdict(ex_id, False, f"{TAG} was committed for prod at t={info.time:.0f}s (commit {sha[:7]}), "
                           f"before staging had validated it: {before}", figures=figures)
        record = lab.repo.deploy_record(PROD_PATH)
        figures["deploy_record"] = [f"{c.sha[:7]} {c.message.splitlines()[0]}" for c in record[:5]]
        if sha not in {c.sha for c in record}:
            return Verdict(ex_id, False, f"prod's image changed with commit {sha[:7]} ('{info.message.splitlines()[0]}'"
                           f"), which `git log -- {PROD_PATH}` does not list: the deploy record misses prod's "
                           "release", figures=figures)
        if prod["tag"] != TAG or prod["status"] != "Current":
            return Verdict(ex_id, False, f"prod specifies {prod['tag']} and its rollout is {prod['status']} "
                           f"({prod['ready']} of {prod['replicas']} ready)", figures=figures)
        return Verdict(ex_id, True, f"staging ran {TAG} healthy at t={valid_at:.0f}s; your prod commit {sha[:7]} "
                       f"came at t={info.time:.0f}s; prod runs {TAG} on {prod['ready']} of {prod['replicas']} "
                       f"replicas; `git log -- {PROD_PATH}` starts with {record[0].sha[:7]} "
                       f"'{record[0].message.splitlines()[0]}'", figures=figures)
    finally:
        lab.close()


# ---------------------------------------------------------------------- promotion-health-gate

GOOD, BAD = "6.5.1", "6.5.99"
GOOD_AT, BAD_AT, VERDICT_WITHIN = 600.0, 1500.0, 600.0


def _gate_start() -> dict[str, str]:
    files = fleet_files()
    files[APPS_STAGING] = set_in_yaml(files[APPS_STAGING], "Kustomization",
                                      lambda d: d["spec"].__setitem__("wait", False))
    files["README.md"] = _readme("promotion-health-gate",
                                 "A promotion bot copies staging's tag to prod once staging reports Ready. Someone "
                                 "turned staging's health checks off to make deploys faster. Make staging's Ready "
                                 "mean something again.")
    return files


def _judge_gate(history: History) -> Verdict:
    from labkit.scenarios.promotion import PromotionBot, tag_in_git

    ex_id = "promotion-health-gate"
    bots: list[PromotionBot] = []
    rep = FleetReplay.run(history, first_at=60.0, gap=60.0, environments=("staging", "prod"),
                          on_start=lambda lab: bots.append(PromotionBot(lab, every=10.0)))
    lab, bot = rep.lab, bots[0]
    try:
        lab.run(GOOD_AT)
        lab.set_image("staging", GOOD, author="alice", message=f"podinfo staging: {GOOD}")
        lab.run(BAD_AT)
        bad_sha = lab.set_image("staging", BAD, author="bob", message=f"podinfo staging: {BAD}")
        bad_push = lab.now
        lab.run(bad_push + VERDICT_WITHIN)
        prod_tags = []
        for c in lab.repo.deploy_record(PROD_PATH):
            prod_tags.append((c.time, tag_in_git(lab, "prod", c.sha), c.author))
        bad_in_prod = sorted(t for t in prod_tags if t[1] == BAD)
        blocked = [b for b in bot.blocked if b["tag"] == BAD]
        prod = podinfo_status(lab, "prod")
        ready = lab.ready("staging")
        figures = {"bad_in_prod_overlay": bool(bad_in_prod), "blocked_after_s": (blocked[0]["time"] - bad_push)
                   if blocked else None, "prod_tag": prod["tag"], "promotions": [p["tag"] for p in bot.promoted],
                   "commits": len(history.commits)}
        prefix = "no commit yet: " if not history.commits else ""
        if bad_in_prod:
            t, _, who = bad_in_prod[0]
            passed = [e for e in lab.cluster("staging").log.filter(event="ReconciliationSucceeded", object=APPS,
                                                                    since=bad_push) if e.revision.endswith(bad_sha)]
            problem = pod_problem(lab, "staging")
            why = (f"staging's apps Kustomization reported Ready=True for it at t={passed[0].time:.0f}s "
                   f"({passed[0].time - bad_push:.0f} s after bob's push)"
                   + (f" while its new pods were in {problem.split(' (')[0]}" if problem else "")
                   if passed else "")
            return Verdict(ex_id, False, f"{prefix}{BAD} reached prod's overlay: {who} merged it at t={t:.0f}s"
                           + (f"; {why}" if why else ""), figures=figures)
        if not history.commits:
            return Verdict(ex_id, False, "no commit yet", figures=figures)
        if not blocked:
            stages = [e.event for e in lab.cluster("staging").log.filter(object=APPS, since=bad_push)
                      if e.revision.endswith(bad_sha)]
            ks = lab.kustomization("staging") or {}
            timeout = (ks.get("spec") or {}).get("timeout", "?")
            doing = (f"still waiting for its health check (spec.timeout {timeout})"
                     if "Applied" in stages and "HealthChecked" not in stages
                     else f"{ready.get('reason', '?')}: {ready.get('message', '')[:120]}")
            return Verdict(ex_id, False, f"no verdict on {BAD} within {VERDICT_WITHIN / 60:.0f} minutes of bob's push: "
                           f"staging's apps Kustomization was {doing} — the bot neither promoted nor blocked it",
                           figures=figures)
        if prod["tag"] != GOOD or prod["status"] != "Current":
            return Verdict(ex_id, False, f"{BAD} was blocked, but the good release {GOOD} did not reach prod: prod "
                           f"runs {prod['tag']} ({prod['status']}); promotions: "
                           f"{[p['tag'] for p in bot.promoted] or 'none'}", figures=figures)
        promoted = [p for p in bot.promoted if p["tag"] == GOOD]
        return Verdict(ex_id, True, f"{GOOD} promoted at t={promoted[0]['time']:.0f}s and running in prod on "
                       f"{prod['ready']} of {prod['replicas']} replicas; {BAD} blocked at t={blocked[0]['time']:.0f}s "
                       f"({blocked[0]['time'] - bad_push:.0f} s after bob's push: staging's health check failed); "
                       f"prod's overlay never named {BAD}", figures=figures)
    finally:
        lab.close()


EXERCISES = (
    Exercise(
        id="promotion-validated-tag",
        scenario=SCENARIO,
        title="Promote a validated tag: staging first, then prod, all in git",
        goal=f"prod runs podinfo {TAG} on all 3 replicas; the commit that changed prod's image was pushed after "
             f"staging ran {TAG} healthy; and `git log -- {PROD_PATH}` lists that commit (the deploy record).",
        task=f"In fleet/promotion-validated-tag/ promote {TAG}: one commit for staging, then one for prod (the judge "
             "pushes each of your commits 10 simulated minutes after the previous one), then "
             "`labkit check promotion-validated-tag`.",
        start=lambda: {**fleet_files(), "README.md": _readme("promotion-validated-tag",
                                                             f"Promote podinfo {TAG} to prod the GitOps way.")},
        judge=_judge_validated,
        solution=Change("staging overlay, then prod overlay", f"podinfo staging: {TAG}", _set_tag(STAGING_OVERLAY, TAG),
                        then=Change("prod overlay", f"podinfo prod: promote {TAG}", _set_tag(PROD_OVERLAY, TAG))),
        wrong=(
            Change("both overlays in one commit", f"podinfo: {TAG} everywhere",
                   lambda files: {**_set_tag(STAGING_OVERLAY, TAG)(files), **_set_tag(PROD_OVERLAY, TAG)(files)},
                   expect="before staging had validated it"),
            Change("staging only", f"podinfo staging: {TAG}", _set_tag(STAGING_OVERLAY, TAG),
                   expect="prod still runs podinfo 6.5.0"),
            Change("prod by the Flux Kustomization's spec.images", f"podinfo staging: {TAG}",
                   _set_tag(STAGING_OVERLAY, TAG),
                   then=Change("prod: spec.images", f"prod: podinfo {TAG}",
                               _ks(APPS_PROD, lambda s: s.__setitem__("images", [{"name": PODINFO, "newTag": TAG}])),
                               ), expect="does not list"),
        ),
        hints=("Promotion is a change to git, never to a cluster — and a tag is promoted only after the environment "
               "before it ran it healthy.",
               "Two commits: the staging overlay first; once staging is healthy (the judge waits 10 minutes between "
               "your commits), the prod overlay. Whatever changes prod should show in `git log -- "
               f"{PROD_PATH}`.",
               f"Commit `newTag: {TAG}` in {STAGING_OVERLAY}; then commit `newTag: {TAG}` in {PROD_OVERLAY}."),
        minutes=10,
    ),
    Exercise(
        id="promotion-health-gate",
        scenario=SCENARIO,
        title="Let staging's health check gate the promotion",
        goal=f"A release whose image cannot be pulled ({BAD}) never reaches prod's overlay and the promotion bot "
             f"blocks it within {VERDICT_WITHIN / 60:.0f} minutes of its push, while a good release ({GOOD}) is still "
             "promoted and runs in prod.",
        task="Change staging's Flux set-up in fleet/promotion-health-gate/staging/, commit, then "
             "`labkit check promotion-health-gate` (the judge plays a good release at 10 min and a bad one at 25 min).",
        start=_gate_start,
        judge=_judge_gate,
        solution=Change("wait: true", "staging: apps waits for health",
                        _ks(APPS_STAGING, lambda s: s.__setitem__("wait", True))),
        wrong=(
            Change("a health check on the Service", "staging: health-check podinfo",
                   _ks(APPS_STAGING, lambda s: s.__setitem__("healthChecks", [
                       {"apiVersion": "v1", "kind": "Service", "name": "podinfo", "namespace": "podinfo-staging"}])),
                   expect=f"{BAD} reached prod's overlay"),
            Change("suspend prod", "prod: freeze podinfo",
                   _ks(APPS_PROD, lambda s: s.__setitem__("suspend", True)), expect=f"{BAD} reached prod's overlay"),
            Change("health checks with a 1h timeout", "staging: thorough health checks",
                   _ks(APPS_STAGING, lambda s: (s.__setitem__("wait", True), s.__setitem__("timeout", "1h"))),
                   expect="no verdict on"),
        ),
        hints=("The bot trusts staging's Ready condition. With `wait: false`, Ready=True only says the apply "
               "worked — not that podinfo's new pods run.",
               "kustomize-controller health-checks what it applied with `wait: true` (or the objects in "
               "`healthChecks`), for at most `timeout`; a failure is Ready=False, reason HealthCheckFailed. Which "
               "object tells whether a release runs?",
               "In staging/apps.yaml set `wait: true` (keep `timeout: 5m0s`)."),
        minutes=10,
    ),
)
