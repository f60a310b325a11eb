"""Secrets the GitOps way: sealed secrets, SOPS + age, external secrets, and a guard on commits.

One virtual clock, one real git repository, one simulated cluster reconciled by
Flux (and, for the disaster at the end, a second cluster rebuilt from the same
repository).  Every outcome comes from the mechanisms in ``labkit.secrets``;
nothing below states a result.

1. **A plaintext Secret caught before commit.**  Before the guard existed
   somebody committed a ConfigMap with a base64 token and "removed" it in the
   next commit.  Alice now tries to commit a plain ``Secret``; the guard
   refuses it naming the file and fields (``plaintext_commit_refused``), and a
   scan of the history still finds the old token (``history_findings``).
2. **Sealed secrets.**  The sealed-secrets controller starts with one key;
   Alice fetches its certificate, seals ``db-credentials`` (strict scope) and a
   ``legacy-token``, and commits both; Flux applies them and the controller
   unseals them (``sealed_secret_synced``).  Every ``key_renew_days`` the
   controller adds a key; on day 45 the team re-seals ``db-credentials`` with
   the newest key (``kubeseal --re-encrypt``), never re-seals the legacy token;
   on day 62 the controller restarts and the legacy token still unseals with
   the first key (``sealed_old_seal_synced_after_rotation``).  On day 65 the
   cluster is rebuilt from git: a fresh controller (with the key backup
   restored when ``backup_keys``) meets the SealedSecrets from git
   (``sealed_after_key_loss_synced``, ``sealed_key_loss_message``).
3. **SOPS + age.**  The platform team commits a ``.sops.yaml`` and an
   encrypted ``api-token`` Secret for a ``secrets`` Kustomization that has no
   ``decryption`` yet (``sops_without_decryption_error``); then adds
   ``decryption`` before the ``sops-age`` key Secret exists
   (``sops_missing_key_error``); then creates the key Secret
   (``sops_decrypted_in_cluster``).
4. **External secrets.**  ``payments`` credentials live in the in-lab secrets
   manager; an ExternalSecret (``refresh_interval``) copies them.  The value is
   rotated in the manager at a seeded time of the morning, with no commit
   (``rotation_propagated_after_s``); later the manager is unreachable when a
   new app's ExternalSecret arrives from git (``store_outage_reason``,
   ``store_outage_target_secret_present``).

``secret_values_in_events`` counts how many of the run's secret values appear
anywhere in the event logs, git's log, or the status of any Kustomization,
SealedSecret or ExternalSecret — the lab's own promise that it is zero.
"""
from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import pandas as pd
import yaml

from labkit.core.clock import rng_for
from labkit.core.duration import parse_duration
from labkit.engine.apply import EngineTimings
from labkit.core.events import EventLog
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.repo import ManifestRepo
from labkit.secrets import external as ext
from labkit.secrets import guard, sealed, sops
from labkit.sim.cluster import SimCluster

REPO_URL = "https://github.com/labkit/fleet"
KS_API = "kustomize.toolkit.fluxcd.io/v1"
NS = "shop"
DAY = 86400.0
HOUR = 3600.0
TOKEN = "labkit-webhook-token"


def _yaml(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def _secret_value(rng: Any, n: int = 24) -> str:
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def _seed_files(refresh_interval: str) -> dict[str, str]:
    ks = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
          "resources": ["namespace.yaml", "secret-store.yaml", "payments-external.yaml"]}
    store = {"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": NS},
             "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                           "auth": {"jwt": {"serviceAccountRef": {"name": "shop"}}}}}}}
    return {"apps/kustomization.yaml": yaml.safe_dump(ks, sort_keys=False),
            "apps/namespace.yaml": _yaml({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
            "apps/payments-external.yaml": _yaml(_external_secret("payments", "prod/payments", "payments-api",
                                                                 refresh_interval)),
            "apps/secret-store.yaml": _yaml(store),
            "README.md": "# fleet\n"}


def _external_secret(name: str, key: str, target: str, refresh: str) -> dict[str, Any]:
    return {"apiVersion": ext.API_VERSION, "kind": "ExternalSecret", "metadata": {"name": name, "namespace": NS},
            "spec": {"refreshInterval": refresh, "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                     "target": {"name": target, "creationPolicy": "Owner"},
                     "data": [{"secretKey": "api-key", "remoteRef": {"key": key, "property": "api-key"}}]}}


def _kustomization(name: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": KS_API, "kind": "Kustomization", "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {"interval": "24h", "sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": path,
                     "prune": True, **extra}}


def _ready(cluster: SimCluster, name: str) -> dict[str, Any]:
    ks = cluster.get(KS_API, "Kustomization", name, "flux-system") or {}
    for c in (ks.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return {}


def _secret_text(cluster: SimCluster, name: str, key: str, namespace: str = NS) -> str | None:
    s = cluster.get("v1", "Secret", name, namespace)
    if s is None or key not in (s.get("data") or {}):
        return None
    return base64.b64decode(s["data"][key]).decode()


@dataclass
class SecretsResult:
    """Everything the notebook shows: metrics, the samples behind the figures, and the labs' logs."""

    metrics: dict[str, Any]
    rotation: pd.DataFrame
    keys: pd.DataFrame
    marks: dict[str, float]
    refusal: str
    history: list[guard.Finding]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: with ``keep=True``: the live objects of the run (``SecretsWorld``), for the notebook's explorer
    world: Any = None


@dataclass
class SecretsWorld:
    """The run's simulation objects, kept alive after ``run_secrets`` returns (``keep=True``).

    Both clusters (the original ``prod`` and the rebuilt one) share one clock and one
    repository; each has its own event log, Flux, sealed-secrets controller and
    external-secrets operator.  ``close()`` closes the repository and removes the workdir.
    """

    env: Any
    repo: ManifestRepo
    grepo: Any
    git_log: EventLog
    manager: Any
    clusters: dict[str, SimCluster]
    flux: dict[str, FluxSystem]
    sealed: dict[str, Any]
    workdir: Path
    refresh_interval: str
    tmp: Any = None

    def close(self) -> None:
        self.repo.close()
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None


def _flux(cluster: SimCluster, repo: ManifestRepo, workdir: Path, seed: int) -> FluxSystem:
    flux = FluxSystem(cluster, cluster.env, log=cluster.log, seed=seed, timings=FluxTimings(),
                      engine_timings=EngineTimings(), workdir=workdir)
    flux.install()
    flux.add_remote(REPO_URL, repo)
    flux.enable_webhook(repo, token=TOKEN)
    flux.apply([{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                 "metadata": {"name": "fleet", "namespace": "flux-system"},
                 "spec": {"interval": "24h", "url": REPO_URL, "ref": {"branch": "main"}}},
                _kustomization("apps", "./apps")])
    return flux


def run_secrets(*, seed: int = 0, key_bits: int = 4096, key_renew_days: float = 30.0, refresh_interval: str = "1h",
                backup_keys: bool = False, workdir: str | Path | None = None, keep: bool = False) -> SecretsResult:
    """Run the four parts of the scenario on one clock (see the module docstring).

    ``keep=True`` keeps the simulation alive in ``result.world`` (the notebook's explorer
    goes on from there); otherwise the repository is closed and the workdir removed.
    """
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="labkit-secrets-")
        workdir = tmp.name
    workdir = Path(workdir)
    rng = rng_for(seed, "secrets-values")
    values = {k: _secret_value(rng) for k in ("db_password", "legacy_token", "api_token", "payments_v1",
                                              "payments_v2", "reports_key", "leaked_token", "refused_password")}
    refresh_s = parse_duration(refresh_interval, field="refresh_interval")
    marks: dict[str, float] = {}

    cluster = SimCluster(seed=seed, name="prod")
    env = cluster.env
    git_log = EventLog(lambda: env.now)
    repo = ManifestRepo(workdir / "repo", log=git_log, url=REPO_URL)
    seed_dir = workdir / "seed"
    files = _seed_files(refresh_interval)
    for rel, text in files.items():
        p = seed_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    repo.seed(seed_dir, when=0)
    grepo = guard.GuardedRepo(repo)

    # the controllers and the external secrets manager
    ctl = sealed.install_sealed_secrets(cluster, key_bits=key_bits, key_renew_period=key_renew_days * DAY)
    manager = ext.SecretsManager(env, cluster.log, seed=seed)
    manager.create_secret("prod/payments", {"api-key": values["payments_v1"]})
    manager.create_secret("prod/reports", {"api-key": values["reports_key"]})
    manager.allow(f"system:serviceaccount:{NS}:shop", "prod/*")
    eso = ext.install_external_secrets(cluster, manager)
    flux = _flux(cluster, repo, workdir / "flux-prod", seed)

    rotation_rows: list[dict[str, Any]] = []

    def sample_rotation():
        while env.now <= 2 * DAY:
            live = _secret_text(cluster, "payments-api", "api-key")
            store_v = 2 if env.now >= marks.get("rotated", float("inf")) else 1
            cluster_v = {values["payments_v1"]: 1, values["payments_v2"]: 2}.get(live or "", 0)
            rotation_rows.append({"time": env.now, "store_version": store_v, "cluster_version": cluster_v})
            yield env.timeout(60.0)

    env.process(sample_rotation())

    # ---------------------------------------------------------------- 1. the guard
    env.run(until=30)
    b64 = base64.b64encode(values["leaked_token"].encode()).decode()
    repo.commit({"apps/legacy-config.yaml": _yaml({"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": "legacy", "namespace": NS},
                                                   "data": {"API_TOKEN": b64}})},
                message="legacy config (before the guard existed)", author="mallory", when=30)
    repo.commit({"apps/legacy-config.yaml": None}, message="remove legacy config", author="mallory", when=40)
    env.run(until=60)
    plain = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": NS},
             "stringData": {"password": values["refused_password"]}}
    try:
        grepo.commit({"apps/db-credentials.yaml": _yaml(plain)}, message="db credentials", author="alice", when=60)
        refused, refusal = False, ""
    except guard.PlaintextSecretRefused as err:
        refused, refusal = True, str(err)
    history = guard.scan_history(repo)

    # ---------------------------------------------------------------- 2. sealed secrets
    env.run(until=120)
    cert = ctl.fetch_cert()
    db = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": NS},
          "stringData": {"password": values["db_password"]}}
    legacy = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "legacy-token", "namespace": NS},
              "stringData": {"token": values["legacy_token"]}}
    kfile = yaml.safe_load(repo.read("apps/kustomization.yaml"))
    kfile["resources"] += ["db-credentials-sealed.yaml", "legacy-token-sealed.yaml"]
    grepo.commit({"apps/db-credentials-sealed.yaml": _yaml(sealed.seal(db, cert)),
                  "apps/legacy-token-sealed.yaml": _yaml(sealed.seal(legacy, cert)),
                  "apps/kustomization.yaml": yaml.safe_dump(kfile, sort_keys=False)},
                 message="shop: sealed db credentials and legacy token", author="alice", when=120)
    marks["sealed_committed"] = 120.0
    env.run(until=300)
    sealed_synced = ctl.synced(NS, "db-credentials").get("status") == "True" and \
        _secret_text(cluster, "db-credentials", "password") == values["db_password"]

    # ---------------------------------------------------------------- 3. SOPS + age
    age = sops.AgeKey.generate()
    config = sops.sops_config([sops.CreationRule(r"secrets/.*\.yaml$", (age.recipient,))])
    api = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-token", "namespace": NS},
           "type": "Opaque", "stringData": {"token": values["api_token"]}}
    grepo.commit({".sops.yaml": config,
                  "secrets/kustomization.yaml": "resources: [api-token.yaml]\n",
                  "secrets/api-token.yaml": sops.encrypt_manifest(api, path="secrets/api-token.yaml", config=config)},
                 message="shop: SOPS-encrypted api token", author="platform", when=300)
    env.run(until=320)
    flux.apply(_kustomization("secrets", "./secrets"), field_manager="kubectl")
    env.run(until=600)
    no_decryption = _ready(cluster, "secrets").get("message", "")
    cluster.apply({"apiVersion": KS_API, "kind": "Kustomization", "metadata": {"name": "secrets", "namespace": "flux-system"},
                   "spec": {"decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}},
                  field_manager="kubectl-patch", force=True)
    env.run(until=900)
    missing_key = _ready(cluster, "secrets").get("message", "")
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-age", "namespace": "flux-system"},
                   "stringData": {"age.agekey": age.keyfile()}}, field_manager="kubectl")
    flux.request_reconcile("Kustomization", "secrets")
    env.run(until=1200)
    sops_ok = _ready(cluster, "secrets").get("status") == "True" and \
        _secret_text(cluster, "api-token", "token") == values["api_token"]

    # ---------------------------------------------------------------- 4. external secrets
    rotate_at = 6 * HOUR + rng_for(seed, "rotation").uniform(0, 3 * HOUR)
    env.run(until=rotate_at)
    manager.rotate("prod/payments", {"api-key": values["payments_v2"]})
    marks["rotated"] = env.now
    propagated_at = None
    while env.now < rotate_at + 2 * refresh_s + 10:
        env.run(until=env.now + 1.0)
        if _secret_text(cluster, "payments-api", "api-key") == values["payments_v2"]:
            propagated_at = env.now
            break
    env.run(until=DAY + 2 * HOUR)
    manager.available = False
    marks["outage"] = env.now
    kfile = yaml.safe_load(repo.read("apps/kustomization.yaml"))
    kfile["resources"].append("reports-external.yaml")
    grepo.commit({"apps/reports-external.yaml": _yaml(_external_secret("reports", "prod/reports", "reports-api",
                                                                         refresh_interval)),
                  "apps/kustomization.yaml": yaml.safe_dump(kfile, sort_keys=False)},
                 message="reports: api key from the secrets manager", author="bob", when=env.now)
    env.run(until=DAY + 3 * HOUR)
    outage_reason = eso.ready(NS, "reports").get("reason", "")
    outage_present = cluster.get("v1", "Secret", "reports-api", NS) is not None
    manager.available = True
    marks["outage_end"] = env.now
    env.run(until=2 * DAY)

    # ---------------------------------------------------------------- 2b. rotation, re-seal, restart, disaster
    env.run(until=45 * DAY)
    live_ss = cluster.get(sealed.API_VERSION, sealed.KIND, "db-credentials", NS)
    fresh = ctl.rotate(live_ss)
    grepo.commit({"apps/db-credentials-sealed.yaml": _yaml(fresh)}, message="re-seal db credentials with the newest key",
                 author="alice", when=env.now)
    marks["resealed"] = env.now
    env.run(until=62 * DAY)
    ctl.restart()
    marks["restart"] = env.now
    env.run(until=62 * DAY + HOUR)
    old_seal_ok = ctl.synced(NS, "legacy-token").get("status") == "True"
    env.run(until=65 * DAY)
    backup = ctl.backup_keys() if backup_keys else []
    key_rows = [{"time": e.time, "event": e.event, "object": e.object}
                for e in cluster.log.filter(component="sealed-secrets", event="NewKeyWritten")]
    marks["rebuild"] = env.now
    rebuilt = SimCluster(seed=seed + 1, name="prod-rebuilt", env=env, log=EventLog(lambda: env.now))
    ctl2 = sealed.install_sealed_secrets(rebuilt, key_bits=key_bits, key_renew_period=key_renew_days * DAY,
                                         restore=backup)
    ext.install_external_secrets(rebuilt, manager)
    flux2 = _flux(rebuilt, repo, workdir / "flux-rebuilt", seed + 1)
    env.run(until=65 * DAY + HOUR)
    after_loss = ctl2.synced(NS, "db-credentials")
    key_rows += [{"time": e.time, "event": "NewKeyWritten (rebuilt cluster)", "object": e.object}
                 for e in rebuilt.log.filter(component="sealed-secrets", event="NewKeyWritten")]

    # ---------------------------------------------------------------- the promise: no value anywhere
    frames = {"prod": cluster.log.to_frame(), "prod-rebuilt": rebuilt.log.to_frame(), "git": git_log.to_frame()}
    statuses = []
    for c in (cluster, rebuilt):
        for api_version, kind in ((KS_API, "Kustomization"), (sealed.API_VERSION, sealed.KIND),
                                  (ext.API_VERSION, "ExternalSecret"), (ext.API_VERSION, "SecretStore")):
            statuses += [str(o.get("status")) for o in c.list(api_version, kind)]
    haystack = "\n".join([f.astype(str).to_csv() for f in frames.values()] + statuses + [refusal])
    leaks = sum(1 for v in values.values() if v in haystack)

    metrics = {
        "sealed_secret_synced": bool(sealed_synced),
        "sealed_keys_generated": len([r for r in key_rows if r["event"] == "NewKeyWritten"]),
        "sealed_old_seal_synced_after_rotation": bool(old_seal_ok),
        "sealed_after_key_loss_synced": after_loss.get("status") == "True",
        "sealed_key_loss_message": after_loss.get("message", ""),
        "sops_without_decryption_error": no_decryption,
        "sops_missing_key_error": missing_key,
        "sops_decrypted_in_cluster": bool(sops_ok),
        "rotation_propagated_after_s": None if propagated_at is None else round(propagated_at - marks["rotated"], 3),
        "rotation_within_refresh_interval": propagated_at is not None and propagated_at - marks["rotated"] <= refresh_s,
        "store_outage_reason": outage_reason,
        "store_outage_target_secret_present": bool(outage_present),
        "plaintext_commit_refused": refused,
        "history_findings": len(history),
        "secret_values_in_events": leaks,
    }
    world = None
    if keep:
        world = SecretsWorld(env, repo, grepo, git_log, manager, {"prod": cluster, "prod-rebuilt": rebuilt},
                             {"prod": flux, "prod-rebuilt": flux2}, {"prod": ctl, "prod-rebuilt": ctl2}, workdir,
                             refresh_interval, tmp)
    else:
        repo.close()
        if tmp is not None:
            tmp.cleanup()
    return SecretsResult(metrics, pd.DataFrame(rotation_rows), pd.DataFrame(key_rows), marks, refusal, history, frames,
                         world)


def plot_rotation(result: SecretsResult) -> plt.Figure:
    """Value version in the secrets manager vs in the cluster's Secret, around the rotation."""
    r = result.rotation
    t0 = result.marks["rotated"]
    window = r[(r.time >= t0 - 2 * HOUR) & (r.time <= t0 + 3 * HOUR)]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.step(window.time / HOUR, window.store_version, where="post", linewidth=2, label="secrets manager (AWSCURRENT)")
    ax.step(window.time / HOUR, window.cluster_version + 0.03, where="post", linewidth=2, linestyle="--",
            label="Secret payments-api in the cluster")
    ax.axvline(t0 / HOUR, color="tab:red", linestyle=":", label="rotation in the manager (no commit)")
    ax.set_yticks([1, 2], ["version 1", "version 2"])
    ax.set_xlabel("hours since the start of the run (virtual time)")
    ax.set_ylabel("value version")
    prop = result.metrics["rotation_propagated_after_s"]
    ax.set_title(f"External secret rotation reaches the cluster after {prop:.0f} s" if prop is not None
                 else "External secret rotation did not reach the cluster")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_keys(result: SecretsResult) -> plt.Figure:
    """Sealing keys over the run: renewals, the re-seal, the restart and the rebuild."""
    k = result.keys.sort_values("time")
    fig, ax = plt.subplots(figsize=(9, 3.4))
    orig = k[k.event == "NewKeyWritten"]
    ax.step(list(orig.time / DAY) + [result.marks["rebuild"] / DAY], list(range(1, len(orig) + 1)) + [len(orig)],
            where="post", linewidth=2, label="keys held by the controller")
    rebuilt = k[k.event != "NewKeyWritten"]
    if len(rebuilt):
        ax.plot(rebuilt.time / DAY, [1] * len(rebuilt), marker="x", linestyle="none", color="tab:red", markersize=10,
                label="rebuilt cluster's controller: fresh key" + (" + restored backup" if
                                                                    result.metrics["sealed_after_key_loss_synced"] else ""))
    for name, style in (("resealed", ("tab:green", "re-seal with the newest key")),
                        ("restart", ("tab:purple", "controller restart")), ("rebuild", ("tab:red", "cluster rebuilt"))):
        ax.axvline(result.marks[name] / DAY, color=style[0], linestyle=":", label=style[1])
    ax.set_xlabel("days (virtual time)")
    ax.set_ylabel("sealing keys")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ok = "unsealed" if result.metrics["sealed_after_key_loss_synced"] else "cannot be unsealed"
    ax.set_title(f"Sealed-secrets key renewal; after the rebuild the SealedSecrets in git {ok}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
