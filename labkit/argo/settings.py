"""Argo CD's settings: the durations of its work, its seeded random streams, and ``argocd-cm``.

Argo CD's controllers do not reach into one another for configuration: each
is handed a ``SettingsManager`` that knows the namespace Argo runs in and reads
``argocd-cm`` when asked.  ``Settings`` is that object here.  It holds what
the operator chose when installing Argo (``ArgoSystem``'s constructor
arguments): the namespace, the ``ArgoTimings`` of Argo's own work, the
``EngineTimings`` of API calls, the retry limit of automated operations, and
the seed from which every random stream is drawn (``rng(stream)``: one stream
per purpose and per object, so adding an Application never changes the draws
of another).

``ignore_rules()`` reads ``argocd-cm`` from the management cluster, as
Argo's settings manager does, and caches the parsed system-wide ignore rules
per ``resourceVersion``: a refresh of a thousand Applications parses the
ConfigMap once.  A ConfigMap that cannot be parsed is reported once per
version (``SettingsError`` in the log) and read as no rules, the way Argo logs
a bad ``resource.customizations`` and carries on.

It lives apart from ``labkit.argo.controller`` so that the application and
ApplicationSet controllers can be given exactly this (and not the whole
``ArgoSystem``) without an import cycle.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from labkit.argo.diff import system_ignore_rules
from labkit.core.clock import rng_for
from labkit.core.cluster import Cluster
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog

__all__ = ["ArgoTimings", "Settings", "ARGOCD_CM"]

ARGOCD_CM = "argocd-cm"
#: the component whose log reports an argocd-cm that cannot be read (the application controller reads it)
SETTINGS_READER = "argocd-application-controller"


@dataclass
class ArgoTimings:
    """Durations (seconds) of Argo CD's own work in virtual time; ranges are seeded uniform draws."""

    reconciliation: float = 120.0  # timeout.reconciliation
    reconciliation_jitter: float = 60.0  # timeout.reconciliation.jitter
    git_ls_remote: tuple[float, float] = (0.2, 0.8)
    manifest_generate: tuple[float, float] = (0.5, 2.0)  # repo-server cache miss
    sync_wave_delay: float = 2.0  # ARGOCD_SYNC_WAVE_DELAY
    operation_poll: float = 3.0  # re-check of a running operation when no watch event arrives
    self_heal_backoff: tuple[float, float, float] = (2.0, 3.0, 300.0)  # timeout, factor, cap
    self_heal_cooldown: float = 330.0
    webhook_delivery: tuple[float, float] = (0.5, 2.0)
    appset_requeue: float = 180.0  # git generators' default requeueAfterSeconds

    def draw(self, rng: random.Random, name: str) -> float:
        lo, hi = getattr(self, name)
        return lo if lo == hi else rng.uniform(lo, hi)

    @classmethod
    def fixed(cls, *, git: float = 0.0, generate: float = 0.0, webhook: float = 1.0, jitter: float = 0.0,
              **overrides: Any) -> "ArgoTimings":
        """Deterministic durations for tests: fixed git / manifest / webhook times and no resync jitter."""
        t = cls(git_ls_remote=(git, git), manifest_generate=(generate, generate),
                webhook_delivery=(webhook, webhook), reconciliation_jitter=jitter)
        return replace(t, **overrides)


class Settings:
    """What every Argo CD controller reads: namespace, timings, random streams and ``argocd-cm``."""

    def __init__(self, mgmt: Cluster, log: EventLog, *, namespace: str, seed: int, timings: ArgoTimings,
                 engine_timings: EngineTimings, automated_retry_limit: int):
        self.mgmt = mgmt
        self.log = log
        self.namespace = namespace
        self.seed = seed
        self.timings = timings
        self.engine_timings = engine_timings
        self.automated_retry_limit = automated_retry_limit
        self._rules_cache: tuple[str, list] = ("", [])

    def rng(self, stream: str) -> random.Random:
        """The seeded random stream named ``stream`` (the same seed and name give the same draws)."""
        return rng_for(self.seed, f"argo:{stream}")

    def ignore_rules(self) -> list:
        """The system-wide ignore rules of ``argocd-cm`` (parsed once per resourceVersion; [] if invalid)."""
        cm = self.mgmt.get("v1", "ConfigMap", ARGOCD_CM, self.namespace)
        rv = ((cm or {}).get("metadata") or {}).get("resourceVersion", "")
        if rv != self._rules_cache[0]:
            try:
                rules = system_ignore_rules(cm)
            except LabkitError as err:
                self.log.record(SETTINGS_READER, "SettingsError", f"ConfigMap/{self.namespace}/{ARGOCD_CM}",
                                detail={"message": str(err)})
                rules = []
            self._rules_cache = (rv, rules)
        return self._rules_cache[1]
