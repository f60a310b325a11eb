"""rollback exercises: time to restore after a bad release, by ``git revert`` + reconcile.

The folder is the fleet repository (``labkit.workshop.fleet_replay``); the
judge runs staging and plays the rollback scenario's incident
(``labkit.delivery.rollback``, on the sample fleet): bob pushes a bad release;
the on-call engineer decides to roll back (once the bad release is fully out,
or — for a release that crash-loops — a minute after it was applied, plus a
seeded offset: incidents are not in step with any timer), takes a seeded
lognormal time (median 40 s) to type ``git revert`` and push; the service is
**restored** when podinfo runs the previous image again on every replica
(kstatus Current).  ``restore = restored − decision``, as in the scenario.

* ``rollback-webhook`` — the GitRepository polls every 5 minutes (the git
  host's rate limit) and a webhook Receiver is "set up" but a revert still took
  minutes.  Three incidents must each restore in under 2 minutes, with the
  5-minute poll kept.
* ``rollback-health-timeout`` — the webhook works, but the bad release never
  becomes ready: kustomize-controller is busy waiting for its health check when
  the revert arrives, and handles the revert only when that wait ends.  Two
  incidents must each restore in under 2 minutes, with the bad release still
  reported as failed (HealthCheckFailed).
"""
from __future__ import annotations

from labkit.workshop.fleet_replay import (FleetReplay, add_receiver, deliveries, failures, fleet_files,
                                          pod_problem, podinfo_status, receiver_yaml, restored, set_in_yaml,
                                          webhook_story)
from labkit.workshop.model import Change, Exercise, History, Verdict

SCENARIO = "rollback"
PODINFO = "ghcr.io/stefanprodan/podinfo"
GOOD = "6.5.0"
GOAL = 120.0
APPS_STAGING = "staging/apps.yaml"
GOTK_STAGING = "staging/flux-system/gotk-sync.yaml"
RECEIVER = "staging/flux-system/receiver.yaml"
APPS = "Kustomization/flux-system/apps"
SOURCE = "GitRepository/flux-system/flux-system"


def _readme(title: str, body: str) -> str:
    return (f"# {title}\n\n{body}\n\nThis folder is the fleet repository Flux was bootstrapped from (`staging/`, "
            "`prod/`, `apps/podinfo/`). The git host sends push webhooks for a Receiver named `github-receiver` in "
            "`flux-system`, signed with the token in the Secret `webhook-token`. Commit, then run "
            "`labkit check <exercise>`.\n")


def _ks(path: str, kind: str, fn):
    def edit(files):
        return {path: set_in_yaml(files[path], kind, lambda d: fn(d["spec"]))}
    return edit


def _incident(lab, rng, *, bad: str, crash_loops: bool) -> dict:
    """One incident: bob's bad release, the on-call decision, ``git revert`` and the restore (see the docstring)."""
    from labkit.delivery.distributions import Dist

    log = lab.cluster().log
    bad_sha = lab.set_image("staging", bad, author="bob", message=f"podinfo staging: {bad}")
    pushed = lab.now
    if crash_loops:
        applied_at = lab.run_until(lambda: podinfo_status(lab, "staging")["tag"] == bad, timeout=900.0)
        out_at = None if applied_at is None else applied_at + 60.0  # the crash-loop alert fires after a minute
    else:
        out_at = lab.run_until(lambda: restored(lab, "staging", bad), timeout=900.0)
    if out_at is None:
        return {"pushed": pushed, "decision": None, "restore_s": None, "bad_sha": bad_sha}
    decision = out_at + rng.uniform(0.0, 60.0)
    lab.run(decision)
    pods = pod_problem(lab, "staging")
    lab.run(decision + Dist.lognormal(40.0, 0.5).draw(rng))
    revert_sha = lab.repo.revert(bad_sha, "oncall", when=lab.now)
    reverted = lab.now
    back = lab.run_until(lambda: restored(lab, "staging", GOOD), timeout=1800.0)
    fetched = [e.time for e in log.filter(component="source-controller", event="NewArtifact", since=reverted)
               if e.revision.endswith(revert_sha)]
    applied = [e.time for e in log.filter(event="Applied", object=APPS, since=reverted)
               if e.revision.endswith(revert_sha)]
    return {"pushed": pushed, "decision": decision, "reverted": reverted, "restored": back,
            "restore_s": None if back is None else back - decision, "bad_sha": bad_sha, "revert_sha": revert_sha,
            "fetched": fetched[0] if fetched else None, "applied": applied[0] if applied else None,
            "pods_at_decision": pods}


def _shown(incidents: list[dict]) -> str:
    return ", ".join("not restored" if i["restore_s"] is None else f"{i['restore_s']:.0f} s" for i in incidents)


# ---------------------------------------------------------------------- rollback-webhook

MIN_POLL = 300.0


def _webhook_start() -> dict[str, str]:
    files = fleet_files()
    files[GOTK_STAGING] = set_in_yaml(files[GOTK_STAGING], "GitRepository",
                                      lambda d: d["spec"].__setitem__("interval", "5m0s"))
    files.update(add_receiver(files, "staging", resources=(("GitRepository", "fleet"),)))
    files["README.md"] = _readme("rollback-webhook",
                                 "Polling every 5 minutes keeps the git host happy, and the platform team set up a "
                                 "webhook so that a push lands at once. Yet last night's `git revert` took minutes "
                                 "to restore the service. Find out why and fix it.")
    return files


def _judge_webhook(history: History) -> Verdict:
    from labkit.core.clock import rng_for
    from labkit.core.duration import parse_duration

    ex_id = "rollback-webhook"
    rep = FleetReplay.run(history, first_at=60.0, gap=60.0)
    lab = rep.lab
    try:
        since = rep.pushed_at[0] if rep.pushed_at else 0.0
        rng = rng_for(0, "oncall")
        incidents = []
        for _ in range(3):
            lab.run(lab.now + 600.0)
            incidents.append(_incident(lab, rng, bad="6.5.1", crash_loops=False))
        repo_obj = lab.cluster().get("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system")
        interval = parse_duration(str(((repo_obj or {}).get("spec") or {}).get("interval", "1m")))
        d = deliveries(lab, "staging", since)
        worst = max(float("inf") if i["restore_s"] is None else i["restore_s"] for i in incidents)
        waits = [i["fetched"] - i["reverted"] for i in incidents if i.get("fetched") is not None]
        figures = {"restore_s": [i["restore_s"] for i in incidents], "revert_to_fetch_s": waits,
                   "poll_interval_s": interval, "webhook": d, "commits": len(history.commits)}
        head = f"time to restore in 3 incidents: {_shown(incidents)}"
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: {head} (goal: each under {GOAL / 60:.0f} minutes); "
                           f"{webhook_story(d)}", figures=figures)
        if interval < MIN_POLL:
            return Verdict(ex_id, False, f"{head}, but the GitRepository polls every {interval:.0f} s: the goal keeps "
                           "the 5-minute poll (the git host's rate limit)", figures=figures)
        if worst > GOAL:
            fetched = ", ".join(f"{w:.0f} s" for w in waits)
            wait = f"; source-controller fetched the reverts {fetched} after their push" if waits else ""
            failed = [f for f in failures(lab, "staging", since) if f["object"].startswith("Kustomization")]
            return Verdict(ex_id, False, f"{head} — over the {GOAL / 60:.0f}-minute goal{wait}; {webhook_story(d)}"
                           + (f"; {failed[-1]['object']}: {failed[-1]['message']}" if failed else ""),
                           figures=figures)
        return Verdict(ex_id, True, f"{head} (goal: under {GOAL / 60:.0f} minutes, from the decision to roll back); "
                       f"each revert fetched {', '.join(f'{w:.0f} s' for w in waits)} after its push; "
                       f"{webhook_story(d)}; the GitRepository still polls every {interval / 60:.0f} min",
                       figures=figures)
    finally:
        lab.close()


def _fix_receiver(files):
    return {RECEIVER: files[RECEIVER].replace("name: fleet", "name: flux-system")}


def _second_receiver(files):
    """A new, correct Receiver next to the old one — under a name the git host's webhook does not call."""
    import yaml

    from labkit.workshop.yamltext import yaml_dump

    kpath = "staging/flux-system/kustomization.yaml"
    k = yaml.safe_load(files[kpath])
    k["resources"].append("receiver-fleet.yaml")
    return {"staging/flux-system/receiver-fleet.yaml": receiver_yaml(name="fleet-receiver"),
            kpath: yaml_dump(k, sort_keys=False)}


# ---------------------------------------------------------------------- rollback-health-timeout

CRASHING = "6.6.0"


def _timeout_start() -> dict[str, str]:
    files = fleet_files()
    files.update(add_receiver(files, "staging"))
    files["README.md"] = _readme("rollback-health-timeout",
                                 f"The webhook works. Yet when bob's release {CRASHING} crash-looped, the on-call "
                                 "engineer's `git revert` took minutes to restore the service. Find out why and fix "
                                 "it, keeping staging's health checks.")
    return files


def _judge_timeout(history: History) -> Verdict:
    from labkit.core.clock import rng_for
    from labkit.scenarios.lab import default_registry

    ex_id = "rollback-health-timeout"
    registry = default_registry()
    registry.add(PODINFO, [CRASHING], crashing=True)
    rep = FleetReplay.run(history, first_at=60.0, gap=60.0, registry=registry)
    lab = rep.lab
    try:
        log = lab.cluster().log
        since = rep.pushed_at[0] if rep.pushed_at else 0.0
        rng = rng_for(1, "oncall")
        incidents = []
        for _ in range(2):
            lab.run(lab.now + 600.0)
            incidents.append(_incident(lab, rng, bad=CRASHING, crash_loops=True))
        reported = [i for i in incidents
                    if any(e.revision.endswith(i["bad_sha"]) for e in log.filter(event="HealthCheckFailed", object=APPS,
                                                                                 since=i["pushed"]))]
        ks = lab.kustomization("staging") or {}
        timeout = (ks.get("spec") or {}).get("timeout", "the default")
        worst = max(float("inf") if i["restore_s"] is None else i["restore_s"] for i in incidents)
        figures = {"restore_s": [i["restore_s"] for i in incidents], "bad_reported": len(reported),
                   "timeout": timeout, "commits": len(history.commits)}
        head = f"time to restore in 2 incidents: {_shown(incidents)}"
        if not history.commits:
            return Verdict(ex_id, False, f"no commit yet: {head} (goal: each under {GOAL / 60:.0f} minutes)",
                           figures=figures)
        if len(reported) < len(incidents):
            ready = [e for e in log.filter(event="ReconciliationSucceeded", object=APPS, since=since)
                     if any(e.revision.endswith(i["bad_sha"]) for i in incidents)]
            pods = [i["pods_at_decision"] for i in incidents if i.get("pods_at_decision")]
            return Verdict(ex_id, False, f"{head}, but staging's apps Kustomization never reported {CRASHING} as "
                           "failing (no HealthCheckFailed)"
                           + (f": it was Ready=True on it at t={ready[0].time:.0f}s" if ready else "")
                           + (f" while its new pods were in {pods[0].split(' (')[0]}" if pods else ""),
                           figures=figures)
        if worst > GOAL:
            slow = max(incidents, key=lambda i: float("inf") if i["restore_s"] is None else i["restore_s"])
            why = ""
            if slow.get("fetched") is not None and slow.get("applied") is not None:
                gave_up = [e.time for e in log.filter(event="HealthCheckFailed", object=APPS, since=slow["pushed"])
                           if e.revision.endswith(slow["bad_sha"])]
                why = (f"; the revert was fetched {slow['fetched'] - slow['reverted']:.0f} s after its push but "
                       f"applied only {slow['applied'] - slow['reverted']:.0f} s after it")
                if gave_up and slow["fetched"] <= gave_up[0] <= slow["applied"]:
                    why += (f", when kustomize-controller gave up waiting for {CRASHING}'s health check "
                            f"(spec.timeout {timeout})")
            return Verdict(ex_id, False, f"{head} — over the {GOAL / 60:.0f}-minute goal{why}", figures=figures)
        return Verdict(ex_id, True, f"{head} (goal: under {GOAL / 60:.0f} minutes); {CRASHING} was reported "
                       f"HealthCheckFailed each time (spec.timeout {timeout})", figures=figures)
    finally:
        lab.close()


EXERCISES = (
    Exercise(
        id="rollback-webhook",
        scenario=SCENARIO,
        title="Restore in under 2 minutes: the revert and its webhook",
        goal=f"In each of 3 incidents (a bad release, then the on-call engineer's `git revert`) the service is "
             f"restored under {GOAL / 60:.0f} minutes after the decision to roll back, while the GitRepository keeps "
             "polling every 5 minutes.",
        task="Find out why the webhook does not speed up the revert, fix the Flux set-up in "
             "fleet/rollback-webhook/staging/ and commit, then `labkit check rollback-webhook`.",
        start=_webhook_start,
        judge=_judge_webhook,
        solution=Change("point the Receiver at the flux-system GitRepository",
                        "staging: Receiver refreshes flux-system",
                        _fix_receiver),
        wrong=(
            Change("poll every 30 s", "staging: poll git every 30s",
                   _ks(GOTK_STAGING, "GitRepository", lambda s: s.__setitem__("interval", "30s")),
                   expect="keeps the 5-minute poll"),
            Change("accept only push events", "staging: Receiver for push events",
                   lambda files: {RECEIVER: files[RECEIVER].replace("- ping\n", "")},
                   expect="refreshed nothing"),
            Change("a second Receiver under another name", "staging: a working Receiver",
                   _second_receiver, expect="over the 2-minute goal"),
        ),
        hints=("`labkit check` tells you what became of the git host's webhook deliveries. Accepted is not the same "
               "as acted upon.",
               "A Receiver annotates the objects listed in its `spec.resources` so they reconcile at once. What is "
               "the GitRepository in staging/flux-system/gotk-sync.yaml called?",
               "In staging/flux-system/receiver.yaml set the resource's `name: flux-system` (kind GitRepository), "
               "commit."),
        minutes=15,
    ),
    Exercise(
        id="rollback-health-timeout",
        scenario=SCENARIO,
        title="A revert stuck behind a health check",
        goal=f"In each of 2 incidents (a release that crash-loops, then the on-call engineer's `git revert`) the "
             f"service is restored under {GOAL / 60:.0f} minutes after the decision to roll back, and staging's apps "
             "Kustomization still reports the bad release as failed (HealthCheckFailed).",
        task="Change the apps Kustomization in fleet/rollback-health-timeout/staging/apps.yaml and commit, then "
             "`labkit check rollback-health-timeout`.",
        start=_timeout_start,
        judge=_judge_timeout,
        solution=Change("timeout 1m", "staging: apps health checks give up after 1m",
                        _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("timeout", "1m"))),
        wrong=(
            Change("turn health checks off", "staging: apps does not wait",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("wait", False)),
                   expect="never reported"),
            Change("retry failures sooner", "staging: apps retryInterval 30s",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("retryInterval", "30s")),
                   expect="gave up waiting"),
            Change("reconcile apps every minute", "staging: apps every 1m",
                   _ks(APPS_STAGING, "Kustomization", lambda s: s.__setitem__("interval", "1m")),
                   expect="gave up waiting"),
        ),
        hints=("The webhook delivered the revert at once. Look at when kustomize-controller applied it, and what it "
               "was doing in between.",
               "A reconcile with `wait: true` waits for the health of what it applied for up to `spec.timeout` and "
               "handles nothing else of that Kustomization meanwhile — a new revision waits its turn.",
               "In staging/apps.yaml set `timeout: 1m` (keep `wait: true`), commit."),
        minutes=15,
    ),
)
