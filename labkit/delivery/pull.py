"""The pull model: CI writes to git, the controller in the cluster pulls and reconciles.

In the pull model the CI pipeline never touches the cluster.  It builds, tests
and publishes the image, and the new tag reaches git in one of two ways:

* **a CI commit** — a last pipeline job (``update-manifests``) runs
  ``kustomize edit set image`` and pushes the commit;
* **Flux image automation** — the ImageRepository scan finds the new tag, the
  ImagePolicy selects it and the ImageUpdateAutomation commits it through the
  ``$imagepolicy`` marker (``labkit.delivery.image_automation``).

Then Flux takes over (``labkit.flux.system.FluxSystem``, the real dialect):
source-controller fetches the GitRepository on its ``interval`` (with ±5 %
jitter) or at once when a webhook Receiver is told about the push; the new
artifact wakes the Kustomization, which builds (kustomize), plans, applies
server-side as ``kustomize-controller``, prunes, and — with ``wait: true`` —
health-checks everything it applied until it is Current.

**Rollback in the pull model** is ``git revert`` of the bad commit, pushed to
the branch the controller watches.  No CI run is involved: the image of the
previous release is still in the registry.  How long it takes is the sum of
what the mechanisms produce: the person's revert and push, the webhook delivery
or the wait for the next poll, the fetch, the build, the apply, and the
rollout's readiness in the simulator.

``PullController`` wires one service: a ``TimedRemote`` over the service's real
repository (``labkit.delivery.fixture``), a ``FluxSystem`` installed into the
cluster (sharing the fixture's kustomize render cache), the ``GitRepository`` and ``Kustomization`` objects as Flux's docs
write them, and optionally the webhook.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import simpy

from labkit.core.cluster import Cluster
from labkit.delivery.fixture import ServiceFixture
from labkit.delivery.gitview import TimedRemote
from labkit.core.duration import format_duration
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.flux.system import FLUX_NAMESPACE, FluxSystem, FluxTimings

WEBHOOK_TOKEN = "labkit-webhook-token"


def _go(seconds: float) -> str:
    """A Flux duration string; whole seconds are enough for intervals."""
    s = int(round(seconds))
    return format_duration(float(max(s, 1)))


def git_repository(name: str, url: str, interval: float, *, branch: str = "main") -> dict:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
            "spec": {"interval": _go(interval), "url": url, "ref": {"branch": branch}}}


def kustomization(name: str, source: str, path: str, interval: float, *, timeout: float = 300.0,
                  wait: bool = True, prune: bool = True) -> dict:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
            "spec": {"interval": _go(interval), "timeout": _go(timeout), "path": f"./{path}", "prune": prune,
                     "wait": wait, "sourceRef": {"kind": "GitRepository", "name": source}}}


@dataclass(frozen=True)
class PullConfig:
    """The pull side's knobs: how the controller learns about commits, and how long it waits."""

    poll_interval: float = 60.0  # GitRepository.spec.interval (flux bootstrap: 1m)
    webhook: bool = True  # a Receiver refreshes the source on push
    kustomization_interval: float = 600.0  # Kustomization.spec.interval (bootstrap: 10m)
    health_timeout: float = 300.0  # Kustomization.spec.timeout
    flux_timings: FluxTimings = field(default_factory=FluxTimings)
    engine_timings: EngineTimings = field(default_factory=EngineTimings)


class PullController:
    """Flux reconciling one service's repository into ``cluster`` (see the module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        env: simpy.Environment,
        fixture: ServiceFixture,
        *,
        head: str,
        config: PullConfig | None = None,
        log: EventLog | None = None,
        seed: int = 0,
    ):
        self.config = config or PullConfig()
        self.fixture = fixture
        self.env = env
        self.remote = TimedRemote(fixture.repo, env, head=head, log=log, exports=fixture.exports)
        self.flux = FluxSystem(cluster, env, log=log, seed=seed, timings=self.config.flux_timings,
                               engine_timings=self.config.engine_timings, workdir=fixture.workdir)
        self.flux.renderer = fixture.renderer  # renders keyed by commit: shared across runs
        self.log = self.flux.log
        self.flux.add_remote(self.remote.url, self.remote)
        self.flux.install()
        self.receiver: Any = None
        if self.config.webhook:
            self.receiver = self.flux.enable_webhook(self.remote, token=WEBHOOK_TOKEN, url=self.remote.url)
        name = fixture.spec.name
        self.flux.apply([
            git_repository(name, self.remote.url, self.config.poll_interval),
            kustomization(name, name, fixture.spec.path, self.config.kustomization_interval,
                          timeout=self.config.health_timeout),
        ])

    def push(self, sha: str, *, pusher: str = "oncall", message: str = "") -> str:
        """A person (or CI) pushes ``sha`` to the watched branch now."""
        return self.remote.push(sha, pusher=pusher, message=message)
