"""drift exercises: the 2 a.m. ``kubectl edit`` hotfix, and what GitOps does with it.

The folder is the fleet repository (``labkit.workshop.fleet_replay``); the
judge runs staging on a night of virtual time.  The hotfix is the scenario's
own mechanism (``labkit.scenarios.drift``): an Update of podinfo's Deployment
under the ``kubectl-edit`` field manager raising the memory limit to 512Mi,
never committed.  Flux does not watch live objects: its apps Kustomization
finds and takes back drift on its next interval run (forced server-side apply).

* ``drift-keep-hotfix`` — the hotfix must survive the 09:00 planned release
  and be in git: the participant's commit is pushed 10 minutes after the
  edit; after the release the judge also rebuilds a fresh staging from the
  repository (disaster recovery) and reads its memory limit.
* ``drift-self-heal`` — three unreviewed edits during the night must each be
  taken back within 3 minutes (policy: the cluster matches git).
"""
from __future__ import annotations

from labkit.engine.normalize import quantities_equal
from labkit.workshop.fleet_replay import (DeploymentTrace, FleetReplay, add_receiver, failures, fleet_files,
                                          podinfo_status, restored, set_in_yaml)
from labkit.workshop.model import Change, Exercise, History, Verdict

SCENARIO = "drift"
HOTFIX, GIT_LIMIT = "512Mi", "128Mi"
NAMESPACE = "podinfo-staging"
APPS_STAGING = "staging/apps.yaml"
GOTK_STAGING = "staging/flux-system/gotk-sync.yaml"
BASE_DEPLOYMENT = "apps/podinfo/base/deployment.yaml"
APPS = "Kustomization/flux-system/apps"
RELEASE_AT, RELEASE_TAG = 9 * 3600.0, "6.5.1"


def _readme(title: str, body: str) -> str:
    return (f"# {title}\n\n{body}\n\nThis folder is the fleet repository Flux was bootstrapped from (`staging/`, "
            "`prod/`, `apps/podinfo/`). Commit, then run `labkit check <exercise>`.\n")


def _hotfix(lab) -> None:
    def edit(obj: dict) -> None:
        c = obj["spec"]["template"]["spec"]["containers"][0]
        c.setdefault("resources", {}).setdefault("limits", {})["memory"] = HOTFIX
    lab.cluster("staging").kubectl_edit("apps/v1", "Deployment", "podinfo", NAMESPACE, edit)


def _clock(t: float) -> str:
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"


def _ks(path: str, kind: str, fn):
    def edit(files):
        return {path: set_in_yaml(files[path], kind, lambda d: fn(d["spec"]))}
    return edit


# ---------------------------------------------------------------------- drift-keep-hotfix

def _rebuilt_limit(files: dict[str, str]) -> tuple[str | None, str]:
    """Disaster recovery: a fresh staging bootstrapped from ``files``; its podinfo memory limit and kstatus."""
    rep = FleetReplay.start(History(files))
    lab = rep.lab
    try:
        lab.run_until(lambda: podinfo_status(lab, "staging")["status"] == "Current", timeout=900.0, step=5.0)
        dep = lab.deployment("staging")
        if dep is None:
            return None, "NotFound"
        c = dep["spec"]["template"]["spec"]["containers"][0]
        return ((c.get("resources") or {}).get("limits") or {}).get("memory"), podinfo_status(lab, "staging")["status"]
    finally:
        lab.close()


def _judge_keep(history: History) -> Verdict:
    from labkit.core.clock import rng_for

    ex_id = "drift-keep-hotfix"
    rep = FleetReplay.start(history)
    lab = rep.lab
    try:
        trace = DeploymentTrace(lab, "staging")
        lab.run(2 * 3600.0 + rng_for(0, "oncall").uniform(0, 600.0))
        _hotfix(lab)
        edit_at = lab.now
        rep.push_commits(history, first_at=edit_at + 600.0, gap=300.0)
        lab.run(RELEASE_AT)
        lab.set_image("staging", RELEASE_TAG, author="alice",
                      message=f"podinfo staging: {RELEASE_TAG} (planned release)")
        lab.run_until(lambda: restored(lab, "staging", RELEASE_TAG), timeout=1800.0, step=5.0)
        lab.advance(600.0)
        st = podinfo_status(lab, "staging")
        live = trace.value_at(lab.now, "memory")
        back = trace.first(since=edit_at + 1e-6, memory=GIT_LIMIT)
        figures = {"hotfix_at_s": edit_at, "first_taken_back_at_s": back, "tag_after_release": st["tag"],
                   "memory_after_release": live, "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: the hotfix ({_clock(edit_at)}) was taken back at "
                           f"{_clock(back) if back else 'never'} and after the 09:00 release staging's memory limit "
                           f"is {live}", figures=figures)
        if st["tag"] != RELEASE_TAG or st["status"] != "Current":
            suspended = lab.cluster("staging").log.filter(event="Suspended", object=APPS, since=RELEASE_AT)
            why = "the apps Kustomization is suspended" if suspended else ""
            failed = failures(lab, "staging", rep.pushed_at[0])
            if not why and failed:
                why = f"{failed[-1]['object'].split('/')[-1]}: {failed[-1]['reason']}: {failed[-1]['message']}"
            return Verdict(ex_id, False, f"the 09:00 release did not reach staging: at {_clock(lab.now)} it still "
                           f"runs {st['tag']} ({st['status']})" + (f" — {why}" if why else ""), figures=figures)
        if not quantities_equal(live, HOTFIX):  # 0.5Gi is 512Mi: compare values, not spellings
            changes = [f"{r['memory'] or 'no limit'} at {_clock(r['time'])}" for i, r in enumerate(trace.rows)
                       if r["time"] > edit_at and (i == 0 or trace.rows[i - 1]["memory"] != r["memory"])]
            return Verdict(ex_id, False, f"the hotfix was lost: after the 09:00 release staging's podinfo has "
                           f"{'no memory limit at all' if live is None else f'a {live} memory limit'} (after the "
                           f"edit: {', '.join(changes[:4]) or 'no change'})", figures=figures)
        dr_limit, dr_status = _rebuilt_limit({p: lab.repo.read(p) for p in lab.repo.files()})
        figures["rebuilt_memory"] = dr_limit
        if not quantities_equal(dr_limit, HOTFIX):
            return Verdict(ex_id, False, f"staging keeps {HOTFIX} after the release, but a staging rebuilt from git "
                           f"gets {dr_limit}: the hotfix lives only in the cluster, not in git", figures=figures)
        off = (f"; overnight Flux took the unreviewed edit back at {_clock(back)} until your commit landed"
               if back else "")
        return Verdict(ex_id, True, f"after the 09:00 release staging runs {RELEASE_TAG} with the {HOTFIX} limit, and "
                       f"a staging rebuilt from git gets {dr_limit} too{off}", figures=figures)
    finally:
        lab.close()


def _commit_hotfix(files):
    return {BASE_DEPLOYMENT: files[BASE_DEPLOYMENT].replace(f"memory: {GIT_LIMIT}", f"memory: {HOTFIX}")}


# ---------------------------------------------------------------------- drift-self-heal

EDITS_AT = (2 * 3600.0, 3 * 3600.0 + 1200.0, 4 * 3600.0 + 2400.0)
HEAL_GOAL = 180.0


def _judge_heal(history: History) -> Verdict:
    from labkit.core.clock import rng_for

    ex_id = "drift-self-heal"
    rep = FleetReplay.run(history, first_at=600.0, gap=300.0)
    lab = rep.lab
    try:
        trace = DeploymentTrace(lab, "staging")
        rng = rng_for(0, "oncall")
        lived: list[float | None] = []
        for at in EDITS_AT:
            lab.run(at + rng.uniform(0, 600.0))
            if lab.deployment("staging") is None:
                lived.append(None)
                continue
            _hotfix(lab)
            t0 = lab.now
            lab.run(t0 + 1800.0)
            back = trace.first(since=t0 + 1e-6, memory=GIT_LIMIT)
            lived.append(None if back is None else back - t0)
            if back is None:
                lab.cluster("staging").kubectl_edit(  # the on-call engineer undoes it by hand in the morning
                    "apps/v1", "Deployment", "podinfo", NAMESPACE,
                    lambda o: o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].__setitem__(
                        "memory", GIT_LIMIT))
        shown = ", ".join("not taken back in 30 min" if v is None else f"{v / 60:.1f} min" for v in lived)
        ks = lab.kustomization("staging") or {}
        interval = (ks.get("spec") or {}).get("interval")
        figures = {"hotfix_lived_s": lived, "apps_interval": interval, "commits": len(history.commits)}
        worst = max((float("inf") if v is None else v) for v in lived)
        head = f"the three kubectl edits lived {shown}"
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: {head} (goal: each at most {HEAL_GOAL / 60:.0f} min)",
                           figures=figures)
        if worst > HEAL_GOAL:
            suspended = bool(lab.cluster("staging").log.filter(event="Suspended", object=APPS))
            why = " — the apps Kustomization is suspended" if suspended else (
                f"; the apps Kustomization reconciles every {interval}" if interval else "")
            return Verdict(ex_id, False, f"{head} — over the {HEAL_GOAL / 60:.0f}-minute goal{why}", figures=figures)
        return Verdict(ex_id, True, f"{head}: each taken back by kustomize-controller's periodic reconcile within "
                       f"{HEAL_GOAL / 60:.0f} minutes (apps interval {interval})", figures=figures)
    finally:
        lab.close()


EXERCISES = (
    Exercise(
        id="drift-keep-hotfix",
        scenario=SCENARIO,
        title="Keep the 2 a.m. hotfix: put it in git",
        goal=f"After the 09:00 planned release (podinfo {RELEASE_TAG}) staging runs the release with the hotfix's "
             f"{HOTFIX} memory limit, and a staging rebuilt from git (disaster recovery) gets {HOTFIX} too.",
        task="At about 02:05 the on-call engineer ran `kubectl edit` on staging's podinfo and raised the memory "
             f"limit to {HOTFIX}. Make the fix last: change fleet/drift-keep-hotfix/ and commit (the judge pushes "
             "your commit 10 minutes after the edit), then `labkit check drift-keep-hotfix`.",
        start=lambda: {**fleet_files(), "README.md": _readme("drift-keep-hotfix",
                                                             f"A 2 a.m. `kubectl edit` raised podinfo's memory limit "
                                                             f"to {HOTFIX} in staging. Keep it.")},
        judge=_judge_keep,
        solution=Change("commit the hotfix to the base Deployment", f"podinfo: memory limit {HOTFIX} (2 a.m. hotfix)",
                        _commit_hotfix),
        wrong=(
            Change("suspend the apps Kustomization", "staging: suspend apps until the hotfix is reviewed",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("suspend", True)),
                   expect="the 09:00 release did not reach staging"),
            Change("tell Flux to ignore the memory limit", "staging: ignore the memory limit",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("ignore", [
                       {"paths": ["/spec/template/spec/containers/0/resources/limits/memory"],
                        "target": {"group": "apps", "kind": "Deployment", "name": "podinfo"}}])),
                   expect="the hotfix was lost"),
        ),
        hints=("Flux applies git's value on every run of the apps Kustomization: whatever is only in the cluster is "
               "taken back — at the next interval, or at the latest with the next release.",
               "Suspending or ignoring keeps the live value, but the next cluster built from git (or the next "
               "release, for a suspended Kustomization) shows what git really says.",
               f"Change `memory: {GIT_LIMIT}` to `memory: {HOTFIX}` under resources.limits in "
               f"{BASE_DEPLOYMENT} (or in a staging-overlay patch) and commit."),
        minutes=10,
    ),
    Exercise(
        id="drift-self-heal",
        scenario=SCENARIO,
        title="Self-heal: take a kubectl edit back within 3 minutes",
        goal=f"Each of three unreviewed `kubectl edit`s of staging's podinfo during the night is taken back to git's "
             f"value by Flux within {HEAL_GOAL / 60:.0f} minutes.",
        task="Change the Flux set-up in fleet/drift-self-heal/staging/ and commit, then `labkit check "
             "drift-self-heal` (the judge plays three edits between 02:00 and 05:00).",
        start=lambda: {**fleet_files(), "README.md": _readme("drift-self-heal",
                                                             "Policy: staging matches git again within 3 minutes "
                                                             "of any manual change.")},
        judge=_judge_heal,
        solution=Change("apps interval 2m", "staging: reconcile apps every 2m",
                        _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("interval", "2m"))),
        wrong=(
            Change("poll git every 30 s", "staging: poll git every 30s",
                   _ks(GOTK_STAGING, "GitRepository", lambda s: s.__setitem__("interval", "30s")),
                   expect="over the 3-minute goal"),
            Change("retry failures every minute", "staging: apps retryInterval 1m",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("retryInterval", "1m")),
                   expect="over the 3-minute goal"),
            Change("a push webhook", "staging: webhook Receiver", lambda files: add_receiver(files, "staging"),
                   expect="over the 3-minute goal"),
        ),
        hints=("A kubectl edit changes the cluster, not git: no new commit, no new artifact, no webhook. What makes "
               "Flux look at the live objects again?",
               "kustomize-controller compares live state with git only when the Kustomization runs: after a new "
               "artifact, or every `spec.interval` of the Kustomization (not of the GitRepository).",
               "In staging/apps.yaml set the apps Kustomization's `interval: 2m` (shorter than the goal), commit."),
        minutes=10,
    ),
)
