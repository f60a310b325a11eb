"""Drift: the 2 a.m. ``kubectl edit`` hotfix, and what GitOps does to it.

At 02:00 the on-call engineer raises podinfo's memory limit in staging with
``kubectl edit`` — an Update under the ``kubectl-edit`` field manager, never
committed to git.  What happens next depends on the mechanisms, not on a script:

* **With drift correction** (Flux's default): Flux does not watch live objects;
  on the ``apps`` Kustomization's next interval run the plan dry-runs the
  Deployment with ownership forced, finds the limit differs from git, and the
  apply takes the field back.  ``hotfix_reverted_after_s`` is how long the
  hotfix lived: somewhere within one Kustomization interval of the edit.
* **Without it** (the on-call engineer ran ``flux suspend kustomization apps``
  first, as many runbooks say): nothing reverts the hotfix; a periodic
  ``flux diff`` (labkit's dry-run plan) reports the drifted field.
* **The next planned deploy** (09:00: a tag bump, then ``flux resume``) applies
  the Deployment again.  Server-side apply with force makes kustomize-controller
  the owner of every field it sends, so the memory limit silently returns to
  git's value — the hotfix is lost unless somebody committed it
  (``commit_hotfix``).

A drift report that runs on its own schedule can miss a drift that correction
removed in between: ``drift_reported`` says whether any report saw it.

The night's schedule is parameters (``hotfix_at_s``, ``oncall_jitter_s``,
``deploy_at_s``, ``after_deploy_s``): on the simulator a real night (02:00, 09:00);
on a real cluster (``cluster`` other than ``sim``, wall time) a minute or two, with a
Kustomization interval of seconds.  The hotfix is the same ``kubectl edit`` Update
against the real API server, and the revert is Flux's forced server-side apply there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.core.clock import rng_for
from labkit.core.duration import parse_duration
from labkit.engine.changeset import Action
from labkit.gitops.repo import set_image_in_kustomization  # noqa: F401  (re-exported for notebooks)
from labkit.scenarios.lab import PODINFO, FleetLab

HOTFIX_LIMIT = "512Mi"
NAMESPACE = "podinfo-staging"
KS_API = "kustomize.toolkit.fluxcd.io/v1"


def memory_limit(lab: FleetLab) -> str | None:
    dep = lab.deployment("staging")
    if dep is None:
        return None
    return ((dep["spec"]["template"]["spec"]["containers"][0].get("resources") or {}).get("limits") or {}).get("memory")


def _set_suspend(lab: FleetLab, value: bool) -> None:
    """``flux suspend`` / ``flux resume``: a patch of spec.suspend by the flux CLI's field manager."""
    lab.cluster("staging").apply({"apiVersion": KS_API, "kind": "Kustomization",
                                  "metadata": {"name": "apps", "namespace": "flux-system"},
                                  "spec": {"suspend": value}}, field_manager="flux-client-side-apply", force=True)


@dataclass
class DriftResult:
    lab: FleetLab
    samples: pd.DataFrame
    reports: list[dict[str, Any]]
    marks: dict[str, float] = field(default_factory=dict)
    drift_correction: bool = True

    def metrics(self) -> dict[str, Any]:
        s = self.samples
        edit = self.marks["hotfix"]
        reverted = None
        if self.drift_correction:
            back = s[(s.time > edit) & (s.limit != HOTFIX_LIMIT) & (s.time < self.marks["deploy"])]
            reverted = round(float(back.time.iloc[0] - edit), 3) if len(back) else None
        after = s[s.time >= self.marks["settled"]]
        return {
            "hotfix_reverted_after_s": reverted,
            "drift_reported": bool(self.reports),
            "hotfix_lost_on_next_deploy": bool(len(after)) and bool((after.limit != HOTFIX_LIMIT).all()),
        }


def run_drift(*, seed: int = 0, drift_correction: bool = True, commit_hotfix: bool = False, interval: str = "10m",
              hotfix_at_s: float = 7200.0, oncall_jitter_s: float = 600.0, deploy_at_s: float = 32400.0,
              after_deploy_s: float = 600.0, report_every_s: float = 900.0, cluster: str = "sim") -> DriftResult:
    from labkit.core.errors import LabkitError

    if deploy_at_s <= hotfix_at_s + oncall_jitter_s:
        raise LabkitError(f"the planned deploy ({deploy_at_s} s) must come after the hotfix "
                          f"({hotfix_at_s} s + up to {oncall_jitter_s} s)", field="deploy_at_s")
    interval_s = parse_duration(interval, field="interval")
    lab = FleetLab(seed=seed, webhook=True, cluster=cluster)
    try:
        return _night(lab, seed=seed, drift_correction=drift_correction, commit_hotfix=commit_hotfix,
                      interval=interval, interval_s=interval_s, hotfix_at_s=hotfix_at_s,
                      oncall_jitter_s=oncall_jitter_s, deploy_at_s=deploy_at_s, after_deploy_s=after_deploy_s,
                      report_every_s=report_every_s)
    finally:
        if lab.real:
            lab.close()  # a real cluster: delete the lab's namespaces (everything reported is in the result)


def _night(lab: FleetLab, *, seed: int, drift_correction: bool, commit_hotfix: bool, interval: str,
           interval_s: float, hotfix_at_s: float, oncall_jitter_s: float, deploy_at_s: float,
           after_deploy_s: float, report_every_s: float) -> DriftResult:
    if interval_s != 600.0:
        text = lab.repo.read("staging/apps.yaml").replace("interval: 10m0s", f"interval: {interval}")
        lab.repo.commit({"staging/apps.yaml": text}, message=f"apps: reconcile every {interval}", author="platform",
                        when=0)
    sample_every = min(10.0, interval_s / 5)  # fine enough to see a revert within one interval
    samples: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    marks: dict[str, float] = {}

    def sampler():
        while True:
            samples.append({"time": lab.now, "limit": memory_limit(lab), "image": lab.image("staging")})
            yield lab.env.timeout(sample_every)

    def drift_report():
        yield lab.env.timeout(report_every_s)
        while True:
            try:
                plan = lab.flux["staging"].diff("apps")
                for e in plan.entries:
                    if e.action == Action.CONFIGURED:
                        reports.append({"time": lab.now, "object": e.subject, "drift": ", ".join(e.drift)})
                        lab.cluster("staging").log.record("drift-report", "DriftDetected", e.subject,
                                                          detail={"paths": e.drift})
            except Exception as err:  # noqa: BLE001 - a failed report is recorded, not fatal
                lab.cluster("staging").log.record("drift-report", "ReportFailed", detail={"error": str(err)})
            yield lab.env.timeout(report_every_s)

    lab.env.process(sampler())
    lab.env.process(drift_report())
    lab.run_until(lambda: lab.ready().get("status") == "True", timeout=600)
    marks["ready"] = lab.now
    # the pager goes off at some minute after two: a seeded draw, so the phase against
    # Flux's interval (and the drift report's schedule) is not staged
    lab.run(hotfix_at_s + rng_for(seed, "oncall").uniform(0, oncall_jitter_s))
    if not drift_correction:
        _set_suspend(lab, True)
        marks["suspended"] = lab.now

    def hotfix(obj: dict) -> None:
        obj["spec"]["template"]["spec"]["containers"][0].setdefault("resources", {}).setdefault("limits", {})["memory"] = HOTFIX_LIMIT

    lab.cluster("staging").kubectl_edit("apps/v1", "Deployment", "podinfo", NAMESPACE, hotfix)
    marks["hotfix"] = lab.now
    if commit_hotfix:
        lab.advance(min(600.0, (deploy_at_s - lab.now) / 2))  # later that night, somebody writes it into git
        path = "apps/podinfo/base/deployment.yaml"
        text = lab.repo.read(path).replace("memory: 128Mi", f"memory: {HOTFIX_LIMIT}")
        lab.repo.commit({path: text}, message="podinfo: raise memory limit (hotfix from the 2 a.m. incident)",
                        author="oncall", when=lab.now)
        marks["hotfix_committed"] = lab.now
    lab.run(deploy_at_s)
    marks["deploy"] = lab.now
    lab.set_image("staging", "6.5.1", author="alice", message="podinfo staging: 6.5.1 (planned release)")
    if not drift_correction:
        _set_suspend(lab, False)
        lab.flux["staging"].request_reconcile("Kustomization", "apps")
    lab.run_until(lambda: lab.image("staging") == f"{PODINFO}:6.5.1" and lab.ready().get("status") == "True",
                  timeout=1800)
    marks["settled"] = lab.now
    lab.advance(after_deploy_s)
    return DriftResult(lab, pd.DataFrame(samples), reports, marks, drift_correction)


def plot_drift(result: DriftResult) -> plt.Figure:
    s = result.samples[result.samples.limit.notna()]
    night = result.marks["deploy"] >= 3 * 3600  # the simulator's night, or a compressed one on wall time
    unit, xlabel = (3600, "hours since midnight (virtual time)") if night else (1, "seconds since the lab started")
    hotfix_label = "kubectl edit hotfix (after 02:00)" if night else "kubectl edit hotfix"
    deploy_label = "09:00 planned deploy" if night else "planned deploy"
    fig, ax = plt.subplots(figsize=(10, 3.8))
    order = {"128Mi": 0, HOTFIX_LIMIT: 1}
    ax.step(s.time / unit, [order.get(v, -1) for v in s.limit], where="post", linewidth=2,
            label="live memory limit of the Deployment")
    ax.set_yticks([0, 1], ["128Mi (git)", f"{HOTFIX_LIMIT} (hotfix)"])
    ax.set_ylim(-0.5, 1.5)
    ax.axvline(result.marks["hotfix"] / unit, color="tab:red", linestyle="--", label=hotfix_label)
    ax.axvline(result.marks["deploy"] / unit, color="tab:purple", linestyle=":", label=deploy_label)
    for i, r in enumerate(result.reports):
        ax.plot(r["time"] / unit, 1.3, marker="v", color="tab:orange", linestyle="none",
                label="flux diff reported drift" if i == 0 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("memory limit")
    mode = "drift correction on" if result.drift_correction else "Kustomization suspended, drift only reported"
    ax.set_title(f"The 2 a.m. hotfix under GitOps ({mode})")
    ax.legend(loc="center left", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
