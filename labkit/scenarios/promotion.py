"""Promotion: staging → prod by image tag, gated by staging's health checks.

Two simulated clusters (staging and prod) on one clock, both running Flux from
the same real repository, each reconciling its own overlay
(``apps/podinfo/<env>``).  Promotion is a change to git, never to a cluster:

* a developer bumps the tag in the **staging** overlay;
* staging's ``apps`` Kustomization applies it and waits for health
  (``wait: true``, ``timeout: 5m``): the rolling update must finish;
* a promotion bot watches staging's status.  When staging reports
  ``Ready=True`` for the revision that carries a new tag, the bot opens a pull
  request setting the same tag in the **prod** overlay, a release manager
  reviews and merges it, and prod reconciles it.  When staging reports
  ``HealthCheckFailed`` for a revision, the bot refuses to promote it.

A tag that does not exist in the registry shows the gate at work: staging's
new pods sit in ``ErrImagePull`` / ``ImagePullBackOff`` while the old ReplicaSet
keeps serving (``maxUnavailable: 0``), Flux's health check times out after five
minutes, the bot records ``PromotionBlocked``, and prod never sees the tag.  A
``git revert`` restores staging.

"What is deployed and when" is ``git log -- apps/podinfo/prod``: the deploy
record is the repository's own history (``ManifestRepo.deploy_record``).

On a real cluster (``cluster`` other than ``sim``, wall time) staging and prod are
two namespace-isolated slices of one cluster (``labkit.scenarios.isolation``), the
rollouts are the real Deployment controller's with KWOK's kubelets, and whether an
image pulls is KWOK's decision: a tag matching its missing-image pattern (such as
``missing-6.5.99``) fails with ``ErrImagePull``, any other tag pulls.  The health
timeout (``health_timeout``, committed to both ``apps.yaml`` files when it differs
from git's 5m) and the pauses between steps (``pause_s``) are then seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from labkit.gitops.repo import set_image_in_kustomization
from labkit.scenarios.lab import PODINFO, FleetLab, image_of

BOT = "promotion-bot"
REVIEWER = "release-manager"


def tag_in_git(lab: FleetLab, environment: str, ref: str) -> str | None:
    """The podinfo tag the overlay of ``environment`` pins at revision ``ref``."""
    text = lab.repo.read(f"{lab.overlay(environment)}/kustomization.yaml", ref=ref)
    for img in (yaml.safe_load(text) or {}).get("images") or []:
        if img.get("name") == PODINFO:
            return str(img.get("newTag"))
    return None


class PromotionBot:
    """Promotes staging's healthy tag to prod through a reviewed pull request (a SimPy process)."""

    def __init__(self, lab: FleetLab, *, every: float = 10.0):
        self.lab = lab
        self.every = every
        self.promoted: list[dict[str, Any]] = []
        self.blocked: list[dict[str, Any]] = []
        self._seen_fail: set[str] = set()
        self._tags: dict[tuple[str, str], str | None] = {}  # (environment, commit) -> tag: commits never change
        lab.env.process(self.run())

    def tag(self, environment: str, sha: str) -> str | None:
        """``tag_in_git`` for a commit, read once per (environment, commit)."""
        key = (environment, sha)
        if key not in self._tags:
            self._tags[key] = tag_in_git(self.lab, environment, sha)
        return self._tags[key]

    def run(self):
        lab = self.lab
        while True:
            yield lab.env.timeout(self.every)
            st = (lab.kustomization("staging") or {}).get("status") or {}
            attempted = st.get("lastAttemptedRevision", "")
            if not attempted:
                continue
            sha = attempted.rsplit(":", 1)[-1]
            ready = lab.ready("staging")
            tag = self.tag("staging", sha)
            if ready.get("status") == "False" and ready.get("reason") == "HealthCheckFailed":
                if sha not in self._seen_fail:
                    self._seen_fail.add(sha)
                    self.blocked.append({"time": lab.now, "sha": sha, "tag": tag, "reason": ready.get("message", "")})
                    lab.git_log.record(BOT, "PromotionBlocked", f"Repository/{lab.repo.name}", revision=sha,
                                       detail={"tag": tag, "reason": "staging health check failed"})
                continue
            if ready.get("status") != "True" or st.get("lastAppliedRevision") != attempted:
                continue
            prod_tag = self.tag("prod", lab.repo.head())
            if tag is None or tag == prod_tag:
                continue
            path = f"{lab.overlay('prod')}/kustomization.yaml"
            text = set_image_in_kustomization(lab.repo.read(path), PODINFO, tag, source=path)
            pr = lab.repo.open_pull_request(f"promote-{tag}", {path: text}, BOT, title=f"Promote podinfo {tag} to prod",
                                            when=lab.now)
            merged = lab.repo.merge(pr, REVIEWER, when=lab.now)
            self.promoted.append({"time": lab.now, "tag": tag, "from": sha, "merge": merged})


class ImageMonitor:
    """Samples the image each environment's Deployment specifies and how many pods are ready."""

    def __init__(self, lab: FleetLab, *, every: float = 5.0):
        self.lab = lab
        self.rows: list[dict[str, Any]] = []
        self.every = every
        lab.env.process(self.run())

    def run(self):
        while True:
            for env_name in self.lab.clusters:
                live = self.lab.deployment(env_name)  # one read for both: the same instant
                st = (live or {}).get("status") or {}
                image = image_of(live)
                self.rows.append({"time": self.lab.now, "environment": env_name,
                                  "tag": image.rsplit(":", 1)[-1] if image else None,
                                  "ready": st.get("readyReplicas", 0), "updated": st.get("updatedReplicas", 0)})
            yield self.lab.env.timeout(self.every)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


@dataclass
class PromotionResult:
    lab: FleetLab
    bot: PromotionBot
    monitor: ImageMonitor
    marks: dict[str, float] = field(default_factory=dict)
    deploy_record: list[Any] = field(default_factory=list)
    bad_tag: str = ""

    final_images: dict[str, str | None] = field(default_factory=dict)  # each Deployment's image at the end

    def metrics(self) -> dict[str, Any]:
        mon = self.monitor.frame()
        prod_tags = set(mon[mon.environment == "prod"].tag.dropna())
        caught = any(b["tag"] == self.bad_tag for b in self.bot.blocked)
        return {
            "staging_image": self.final_images.get("staging"),
            "prod_image": self.final_images.get("prod"),
            "bad_tag_caught_in_staging": bool(caught),
            "prod_changed_by_bad_tag": self.bad_tag in prod_tags,
            "deploy_record_commits": len(self.deploy_record),
        }

    def record_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"sha": c.sha[:7], "author": c.author, "time_s": c.time, "message": c.message.splitlines()[0]}
                             for c in self.deploy_record])


def run_promotion(*, seed: int = 0, good_tag: str = "6.5.1", bad_tag: str = "6.5.99", observe_s: float = 900.0,
                  webhook: bool = True, health_timeout: str = "5m", pause_s: float = 30.0,
                  cluster: str = "sim") -> PromotionResult:
    from labkit.core.duration import parse_duration
    from labkit.core.errors import LabkitError

    timeout_s = max(parse_duration(health_timeout, field="health_timeout"), 30.0)  # GetTimeout's floor
    if observe_s <= timeout_s:
        raise LabkitError(f"{observe_s} s is not longer than the health timeout ({health_timeout}): the health "
                          "check would not have failed yet when the bad commit is reverted", field="observe_s")
    lab = FleetLab(seed=seed, environments=("staging", "prod"), webhook=webhook, cluster=cluster)
    try:
        return _promote(lab, good_tag=good_tag, bad_tag=bad_tag, observe_s=observe_s, health_timeout=health_timeout,
                        pause_s=pause_s)
    finally:
        if lab.real:
            lab.close()  # a real cluster: delete the lab's namespaces (everything reported is in the result)


def _promote(lab: FleetLab, *, good_tag: str, bad_tag: str, observe_s: float, health_timeout: str,
             pause_s: float) -> PromotionResult:
    for env_name in ("staging", "prod"):
        lab.set_duration_in_git(f"{env_name}/apps.yaml", "Kustomization", "timeout", health_timeout)
    every = min(10.0, pause_s / 3)  # the bot and the monitor look often enough to see each step
    bot = PromotionBot(lab, every=every)
    monitor = ImageMonitor(lab, every=min(5.0, every))
    marks: dict[str, float] = {}
    both_ready = lambda: all(lab.ready(e).get("status") == "True" for e in ("staging", "prod"))  # noqa: E731
    lab.run_until(both_ready, timeout=600)
    marks["bootstrapped"] = lab.now
    lab.advance(pause_s)
    marks["good_commit"] = lab.now
    lab.set_image("staging", good_tag, author="alice")
    lab.run_until(lambda: lab.image("prod", ) == f"{PODINFO}:{good_tag}" and both_ready(), timeout=1800)
    marks["good_in_prod"] = lab.now
    lab.advance(2 * pause_s)
    marks["bad_commit"] = lab.now
    bad_sha = lab.set_image("staging", bad_tag, author="bob")
    lab.advance(observe_s)
    marks["observed"] = lab.now
    lab.repo.revert(bad_sha, "bob", when=lab.now)
    marks["revert"] = lab.now
    lab.run_until(lambda: lab.image("staging") == f"{PODINFO}:{good_tag}" and lab.ready("staging").get("status") == "True",
                  timeout=900)
    marks["recovered"] = lab.now
    lab.advance(pause_s)
    record = lab.repo.deploy_record(lab.overlay("prod"))
    images = {env_name: lab.image(env_name) for env_name in ("staging", "prod")}
    return PromotionResult(lab, bot, monitor, marks, record, bad_tag, images)


def plot_promotion(result: PromotionResult) -> plt.Figure:
    mon = result.monitor.frame()
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, env_name in zip(axes, ("staging", "prod")):
        sub = mon[(mon.environment == env_name) & mon.tag.notna()]
        tags = sorted(set(sub.tag), key=lambda t: [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in t.split(".")])
        ypos = {t: i for i, t in enumerate(tags)}
        ax.step(sub.time / 60, [ypos[t] for t in sub.tag], where="post", color="tab:blue", linewidth=2,
                label="image tag in the Deployment spec (from git)")
        ax.set_yticks(range(len(tags)), tags)
        ax.set_ylim(-0.5, max(len(tags) - 0.5, 0.5))
        ax2 = ax.twinx()
        ax2.plot(sub.time / 60, sub.ready, color="tab:green", alpha=0.7, label="ready pods (serving)")
        ax2.set_ylabel("ready pods")
        ax2.set_ylim(0, max(sub.ready.max(), 1) + 1)
        ax.set_ylabel("image tag")
        ax.set_title(env_name)
        for b in result.bot.blocked:
            ax.axvline(b["time"] / 60, color="tab:red", linestyle="--", label="promotion blocked (health check failed)")
        for p in result.bot.promoted:
            ax.axvline(p["time"] / 60, color="tab:purple", linestyle=":", label="promotion PR merged")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower right", fontsize=8)
    axes[-1].set_xlabel("minutes (wall clock)" if result.lab.real else "minutes (virtual time)")
    fig.suptitle("Promotion by git: staging's health checks gate what reaches prod")
    fig.tight_layout()
    return fig
