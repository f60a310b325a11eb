"""The two delivery scenarios as functions: what the notebooks call.

``rollback_study`` — Monte Carlo of time to restore after a bad release, push
re-run versus ``git revert`` + reconcile, at the chosen parameters and over
three sweeps (GitRepository poll interval without a webhook, CI queue load,
readiness delay).  ``push_vs_pull_study`` — one change stream through both
models, the DORA four keys and tiers, and the blast radius of a leaked CI
credential on the same organisation.  Each returns a result object with the
frames behind the figures and ``metrics()``, the flat dictionary the scenario's
``metrics.json`` holds.

The article's claims these studies test (``shared/reference/dora.md``): a push
rollback takes 8–15 minutes (a new pipeline run); a GitOps rollback is ``git
revert`` and a reconcile in 60–90 seconds, under two minutes with a webhook;
elite teams restore in under an hour.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import pandas as pd

from labkit.delivery import blast as blast_mod
from labkit.delivery.changes import TeamConfig, generate
from labkit.delivery.ci import CIConfig
from labkit.delivery.distributions import Dist
from labkit.delivery.rollback import (RollbackParams, monte_carlo, percentile, with_ci_load, with_readiness)
from labkit.delivery.stream import StreamConfig, StreamResult, run_stream

PUSH_RANGE_S = (8 * 60.0, 15 * 60.0)  # the article: push rollback 8-15 min
PULL_WEBHOOK_LIMIT_S = 120.0  # the article: under 2 minutes with a webhook


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(float(x), nd)


# ---------------------------------------------------------------------- rollback

@dataclass
class RollbackStudy:
    runs: int
    params: RollbackParams
    push: pd.DataFrame
    pull_webhook: pd.DataFrame
    pull_poll: pd.DataFrame
    poll_sweep: pd.DataFrame
    load_sweep: pd.DataFrame
    readiness_sweep: pd.DataFrame
    sweeps: dict[str, list[Any]] = field(default_factory=dict)

    def distributions(self) -> pd.DataFrame:
        """Every headline run: ``path`` (push / pull+webhook / pull+poll) and ``restore_s``."""
        frames = []
        for name, df in (("push re-run", self.push), ("revert + webhook", self.pull_webhook),
                         (f"revert + poll {self.params.poll_interval:g}s", self.pull_poll)):
            frames.append(pd.DataFrame({"path": name, "restore_s": df["restore_s"]}))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        rows = []
        for name, df in (("push re-run", self.push), ("revert + webhook", self.pull_webhook),
                         ("revert + poll", self.pull_poll)):
            s = df["restore_s"].dropna()
            rows.append({"path": name, "runs": len(df), "restored": len(s), "p10_s": _r(percentile(s, 0.1)),
                         "p50_s": _r(percentile(s, 0.5)), "p90_s": _r(percentile(s, 0.9)),
                         "p50_min": _r((percentile(s, 0.5) or 0) / 60, 2)})
        return pd.DataFrame(rows)

    def findings(self) -> str:
        """Markdown: which parameters produced these numbers, whether the article's ranges hold, what breaks them."""
        m = self.metrics()
        p = self.params
        lines = [
            f"**Parameters of the headline runs.** {p.service.replicas} replicas, readiness probe "
            f"`initialDelaySeconds: {p.service.readiness_delay:g}`; on-call action (re-run / revert + push) "
            f"median {p.human_action.median():g} s; push: {p.ci.runners} CI runners, background utilisation "
            f"{p.ci.background_utilisation:g}, rollback pipeline = "
            f"{'checkout + deploy of the known tag' if p.skip_build else 'the full pipeline (checkout, build, test, publish, deploy)'}; "
            f"pull: GitRepository interval {p.poll_interval:g} s, webhook delivery ~1 s"
            f"{', a required review of the revert' if p.revert_review else ', no review required for the revert'}.",
            "",
            f"* **Push re-run:** median {m['push_restore_p50_s'] / 60:.1f} min, p90 {m['push_restore_p90_s'] / 60:.1f} min "
            f"— {'inside' if m['push_p50_in_article_range'] else 'outside'} the article's 8–15 min.",
            f"* **git revert + webhook:** median {m['pull_restore_p50_s_webhook']:.0f} s, p90 "
            f"{m['pull_restore_p90_s_webhook']:.0f} s — the median is "
            f"{'under' if m['pull_webhook_p50_under_2_min'] else 'not under'} 2 minutes; "
            f"{100 * (m['pull_webhook_share_under_2_min'] or 0):.0f} % of runs restore within 2 minutes.",
            f"* **git revert + {p.poll_interval:g} s poll, no webhook:** median {m['pull_restore_p50_s_poll']:.0f} s.",
            "",
            "**What breaks the ranges** (from the sweeps, medians):",
        ]
        polls = dict(zip(m["sweep_poll_intervals_s"], m["sweep_poll_p50_s"]))
        over = [f"{int(k)} s → {v / 60:.1f} min" for k, v in polls.items() if v is not None]
        lines.append("* Long poll intervals without a webhook: " + ", ".join(over)
                     + ". The wait for the next poll is uniform over the interval, so the median grows by about half"
                       " the interval.")
        loads = dict(zip(m["sweep_ci_loads"], m["sweep_ci_load_push_p50_s"]))
        lines.append("* CI queue saturation (the rollback queues behind other jobs): "
                     + ", ".join(f"utilisation {k:g} → {v / 60:.1f} min" for k, v in loads.items() if v is not None)
                     + ". Waiting time grows like ρ/(1−ρ); near saturation the tail explodes.")
        rs = self.readiness_sweep.groupby(["model", "readiness_delay"])["restore_s"].median()
        parts = [f"{int(d)} s → push {rs.get(('push', d), float('nan')) / 60:.1f} min, pull "
                 f"{rs.get(('pull', d), float('nan')) / 60:.1f} min" for d in self.sweeps["readiness_delays"]]
        lines.append("* Slow readiness (every surge step waits for the probe): " + "; ".join(parts)
                     + ". The pull model's advantage is the pipeline it skips, not a faster rollout.")
        return "\n".join(lines)

    def metrics(self) -> dict[str, Any]:
        push, hook, poll = (self.push["restore_s"], self.pull_webhook["restore_s"], self.pull_poll["restore_s"])
        push50, push90 = percentile(push, 0.5), percentile(push, 0.9)
        hook50, hook90 = percentile(hook, 0.5), percentile(hook, 0.9)
        poll_by = self.poll_sweep.groupby("poll_interval")["restore_s"].median()
        load_by = self.load_sweep.groupby("ci_load")["restore_s"].median()
        return {
            "push_restore_p50_s": _r(push50), "push_restore_p90_s": _r(push90),
            "pull_restore_p50_s_webhook": _r(hook50), "pull_restore_p90_s_webhook": _r(hook90),
            "pull_restore_p50_s_poll": _r(percentile(poll, 0.5)),
            "pull_restore_p90_s_poll": _r(percentile(poll, 0.9)),
            "runs": self.runs,
            "push_p50_in_article_range": bool(push50 is not None and PUSH_RANGE_S[0] <= push50 <= PUSH_RANGE_S[1]),
            "pull_webhook_p50_under_2_min": bool(hook50 is not None and hook50 < PULL_WEBHOOK_LIMIT_S),
            "pull_webhook_share_under_2_min": _r(float((hook.dropna() < PULL_WEBHOOK_LIMIT_S).mean())
                                                 if hook.notna().any() else None, 3),
            "sweep_poll_intervals_s": [float(v) for v in poll_by.index],
            "sweep_poll_p50_s": [_r(v) for v in poll_by.values],
            "sweep_ci_loads": [float(v) for v in load_by.index],
            "sweep_ci_load_push_p50_s": [_r(v) for v in load_by.values],
        }


def rollback_params(
    *,
    replicas: int = 3,
    readiness_delay_s: float = 10.0,
    poll_interval_s: float = 60.0,
    ci_runners: int = 4,
    ci_load: float = 0.0,
    push_skip_build: bool = False,
    human_action_s: float = 40.0,
    revert_review_s: float = 0.0,
) -> RollbackParams:
    """``RollbackParams`` from the scenario's flat parameters."""
    base = RollbackParams()
    return replace(
        base,
        service=replace(base.service, replicas=int(replicas), readiness_delay=float(readiness_delay_s)),
        poll_interval=float(poll_interval_s),
        ci=CIConfig(runners=int(ci_runners), background_utilisation=float(ci_load)),
        skip_build=bool(push_skip_build),
        human_action=Dist.lognormal(float(human_action_s), 0.5),
        revert_review=Dist.lognormal(float(revert_review_s), 0.8) if revert_review_s > 0 else None,
    )


def rollback_study(
    params: RollbackParams,
    *,
    runs: int = 40,
    seed: int = 0,
    poll_intervals: Sequence[float] = (30, 60, 120, 300, 600),
    ci_loads: Sequence[float] = (0.0, 0.5, 0.8, 0.9, 0.95),
    readiness_delays: Sequence[float] = (5, 30, 90),
    workers: int | None = None,
) -> RollbackStudy:
    """Headline Monte Carlo (``runs`` seeds per path) plus the three sweeps."""
    seeds = list(range(seed * 100_000, seed * 100_000 + runs))
    push = monte_carlo("push", seeds, params, workers=workers)
    hook = monte_carlo("pull", seeds, replace(params, webhook=True), workers=workers)
    poll = monte_carlo("pull", seeds, replace(params, webhook=False), workers=workers)
    poll_frames = []
    for v in poll_intervals:
        df = monte_carlo("pull", seeds, replace(params, webhook=False, poll_interval=float(v)), workers=workers)
        df["poll_interval"] = float(v)
        poll_frames.append(df)
    load_frames = []
    for v in ci_loads:
        df = monte_carlo("push", seeds, with_ci_load(params, float(v)), workers=workers)
        df["ci_load"] = float(v)
        load_frames.append(df)
    ready_frames = []
    for v in readiness_delays:
        for model, p in (("push", params), ("pull", replace(params, webhook=True))):
            df = monte_carlo(model, seeds, with_readiness(p, float(v)), workers=workers)
            df["readiness_delay"] = float(v)
            ready_frames.append(df)
    return RollbackStudy(runs, params, push, hook, poll, pd.concat(poll_frames, ignore_index=True),
                         pd.concat(load_frames, ignore_index=True), pd.concat(ready_frames, ignore_index=True),
                         {"poll_intervals": list(poll_intervals), "ci_loads": list(ci_loads),
                          "readiness_delays": list(readiness_delays)})


# ---------------------------------------------------------------------- push vs pull

@dataclass
class PushVsPullStudy:
    team: TeamConfig
    config: StreamConfig
    changes: int
    push: StreamResult
    pull: StreamResult
    blast: blast_mod.BlastRadius

    def keys_table(self) -> pd.DataFrame:
        rows = []
        for r in (self.push, self.pull):
            k = r.keys
            c = k.classify()
            rows.append({"model": r.model, "deployments": k.deployments, "deploys_per_day": round(k.deploys_per_day, 2),
                         "frequency (fourkeys)": k.deployment_frequency_bucket,
                         "lead_time_h (median)": _r(k.lead_time_median_h, 2),
                         "change_failure_rate": _r(k.change_failure_rate, 3),
                         "recovery_h (median)": _r(k.recovery_median_h, 3), "incidents": k.incidents,
                         "DORA 2024 cluster": c.tier, "runner-up": c.runner_up})
        return pd.DataFrame(rows)

    def distances(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": r.model, **{k: round(v, 3) for k, v in r.keys.classify().distances.items()}}
                             for r in (self.push, self.pull)])

    def findings(self) -> str:
        """Markdown summary of the comparison, computed from the results."""
        m = self.metrics()
        b = self.blast
        lines = [
            f"**{self.changes} pull requests** from {self.team.services} services over {self.team.days} days went "
            f"through both models (same commits, same latent defects).",
            f"* Deploys per day: push {m['push_deploys_per_day']}, pull {m['pull_deploys_per_day']} "
            f"(fourkeys: {m['push_frequency_bucket']} / {m['pull_frequency_bucket']}).",
            f"* Median lead time: push {m['push_lead_time_h']} h, pull {m['pull_lead_time_h']} h — dominated by review"
            " and CI, which both models share.",
            f"* Change failure rate: push {m['push_change_failure_rate']:.3f}, pull {m['pull_change_failure_rate']:.3f} "
            "— the defects are the team's, not the delivery model's.",
            f"* Median recovery: push {m['push_recovery_h'] * 60:.1f} min, pull {m['pull_recovery_h'] * 60:.1f} min "
            "(triage included) — the rollback path is where the models differ.",
            f"* Nearest DORA 2024 cluster: push **{m['push_tier']}**, pull **{m['pull_tier']}**.",
            f"* Leaked CI credential: push can change **{b.push.objects}** live objects directly (no review, nothing in"
            f" git); pull exposes **{b.pull.objects}** through git ({b.pull.note})"
            + (f", and **{b.pull_image_channel.objects}** workloads' images through the registry when image automation"
               " selects attacker-pushed tags" if b.pull_image_channel.objects else "") + ".",
        ]
        if self.config.tag_path == "ci-commit" and b.pull.objects == 0:
            lines.append("* Caveat: with `tag_path = ci-commit` the CI commits image tags straight to the reconciled"
                         " branch, which on a protected branch means the CI token is a bypass actor — set"
                         " `ci_bypasses_protection = true` to count what that costs, or use image automation.")
        return "\n".join(lines)

    def metrics(self) -> dict[str, Any]:
        p, q = self.push.keys, self.pull.keys
        return {
            "push_deploys_per_day": _r(p.deploys_per_day, 2), "pull_deploys_per_day": _r(q.deploys_per_day, 2),
            "push_lead_time_h": _r(p.lead_time_median_h, 2), "pull_lead_time_h": _r(q.lead_time_median_h, 2),
            "push_change_failure_rate": _r(p.change_failure_rate, 4),
            "pull_change_failure_rate": _r(q.change_failure_rate, 4),
            "push_recovery_h": _r(p.recovery_median_h, 3), "pull_recovery_h": _r(q.recovery_median_h, 3),
            "push_tier": p.classify().tier, "pull_tier": q.classify().tier,
            "push_leaked_credential_objects_exposed": self.blast.push.objects,
            "pull_leaked_credential_objects_exposed": self.blast.pull.objects,
            "pull_image_channel_workloads_exposed": self.blast.pull_image_channel.objects,
            "push_frequency_bucket": p.deployment_frequency_bucket,
            "pull_frequency_bucket": q.deployment_frequency_bucket,
            "push_incidents": p.incidents, "pull_incidents": q.incidents,
            "changes": self.changes,
        }


def push_vs_pull_study(
    *,
    seed: int = 0,
    days: int = 90,
    services: int = 50,
    changes_per_service_day: float = 0.5,
    review_probability: float = 0.9,
    defect_base: float = 0.05,
    ci_runners: int = 12,
    ci_load: float = 0.3,
    poll_interval_s: float = 60.0,
    webhook: bool = True,
    tag_path: str = "ci-commit",
    push_skip_build: bool = False,
    branch_protection: bool = True,
    ci_bypasses_protection: bool = False,
    deployer_scope: str = "cluster",
    calibration_samples: int = 30,
) -> PushVsPullStudy:
    """The same generated change stream through both models, plus the blast-radius count."""
    team = TeamConfig(services=int(services), days=int(days), changes_per_service_day=float(changes_per_service_day),
                      review_probability=float(review_probability), defect_base=float(defect_base))
    stream = generate(team, seed=seed)
    cfg = StreamConfig(ci=CIConfig(runners=int(ci_runners), background_utilisation=float(ci_load)),
                       poll_interval=float(poll_interval_s), webhook=bool(webhook), tag_path=tag_path,
                       push_skip_build=bool(push_skip_build), calibration_samples=int(calibration_samples))
    push = run_stream(stream, "push", cfg)
    pull = run_stream(stream, "pull", cfg)
    radius = blast_mod.measure(int(services), deployer_scope=deployer_scope,
                               git=blast_mod.GitAccess(branch_protection=bool(branch_protection),
                                                       bypass=bool(ci_bypasses_protection)),
                               image_automation=(tag_path == "image-automation"))
    return PushVsPullStudy(team, cfg, len(stream), push, pull, radius)
