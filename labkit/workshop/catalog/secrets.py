"""secrets exercises: a credential reaches the app through git without ever being readable in git.

Each folder is one Flux-reconciled repository: ``app/`` (Namespace ``shop``, a
Deployment ``shop-api`` whose container takes a credential from a Secret, a
``kustomization.yaml``) and ``gitops/apps.yaml`` (the ``GitRepository`` +
``Kustomization`` the platform team applies).  The judge replays the
participant's commits into a fresh lab — simulated cluster, real git, Flux,
and the secrets machinery of ``labkit.secrets`` — and decides from what
happened there:

``secrets-seal-it``
    The sealed-secrets controller of the lab holds the private half of
    ``pub-cert.pem`` (a lab key derived from a seed, restored before the
    controller starts, as from a key backup).  Solved when the Secret
    ``shop/db-credentials`` exists, was written by the sealed-secrets controller
    (owned by a SealedSecret), holds the DBA's password, ``shop-api`` has its
    pods ready, ``scan_history`` (the plaintext guard run over every
    commit of the lab's repository, like ``gitleaks detect``) finds nothing,
    and the password itself (or its base64) is in no committed file of any
    commit — the participant's (a comment, a README) or the lab repository's.
``secrets-sops-decrypt``
    ``app/api-token.enc.yaml`` is encrypted with SOPS for the age key the
    platform team put in the cluster (``flux-system/sops-age``).  Solved when the
    Kustomization is Ready at the last commit, the Secret holds the decrypted
    token, the pods are ready, and no plaintext is in git history.
``secrets-external-refresh``
    An ExternalSecret copies ``prod/payments`` from the lab's secrets manager.
    After the participant's commits the security team rotates the value three
    times (seeded times, no commit); solved when every rotation reached the
    cluster's Secret within 15 minutes, while the operator read the manager at
    most 20 times an hour (``GetSecretValue`` calls in the event log).
"""
from __future__ import annotations

import base64
from typing import Any, Mapping

import yaml

from labkit.workshop.model import Change, Commit, Exercise, History, Verdict
from labkit.workshop.replay import AppReplay, flux_gitops_yaml
from labkit.workshop.replay_extra import (docs_of, dump_docs, edit_docs, fmt_s, lab_age_key, lab_certificate_pem,
                                          participant_commit_of, sealing_key_backup)
from labkit.workshop.yamltext import yaml_dump

SCENARIO = "secrets"
NS = "shop"
APP = "shop-api"
IMAGE = "ghcr.io/labkit/shop-api"
GITOPS = "gitops/apps.yaml"
KUSTOMIZATION = "app/kustomization.yaml"
FIX_AT, GAP = 300.0, 60.0
KEY_SEED = "secrets-seal-it"
AGE_SEED = "secrets-sops-decrypt"
#: The lab's credentials: made-up values, the same in every workspace (what the DBA / vault team hands over).
DB_PASSWORD = "Tr0ub4dor-lab-7Kq2Zr9Vx4Lw"
API_TOKEN = "lab-api-token-9fQ3mZx7Wp2Rk8Tn"
PAYMENTS = ("pay-v1-Hq8Lr2Xc6Nz4Vb7M", "pay-v2-Jt5Pw9Kd3Fs8Gy2Q", "pay-v3-Rm4Zc7Hx2Vn9Lb6T", "pay-v4-Wq3Ek8Ty5Ua2Sd7P")


# ------------------------------------------------------------------ the repository

def _yaml(*docs: Mapping[str, Any]) -> str:
    return dump_docs([dict(d) for d in docs])


def _namespace() -> str:
    return _yaml({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})


def _deployment(env: list[dict[str, Any]]) -> str:
    labels = {"app": APP}
    return _yaml({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
                  "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels},
                                        "spec": {"containers": [{"name": "api", "image": f"{IMAGE}:1.4.0",
                                                                 "env": env,
                                                                 "resources": {"requests": {"cpu": "100m"}}}]}}}})


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _kustomization(*resources: str) -> str:
    return yaml_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": list(resources)}, sort_keys=False)


def _add_resource(files: Mapping[str, str], name: str) -> str:
    k = yaml.safe_load(files[KUSTOMIZATION])
    if name not in k["resources"]:
        k["resources"].append(name)
    return yaml_dump(k, sort_keys=False)


def _plain_secret(name: str, key: str, value: str, namespace: str = NS, *, encoded: bool = True) -> dict[str, Any]:
    s: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                         "type": "Opaque"}
    if encoded:
        s["data"] = {key: base64.b64encode(value.encode()).decode()}
    else:
        s["stringData"] = {key: value}
    return s


# ------------------------------------------------------------------ reading the lab

def _secret_value(lab: Any, name: str, key: str) -> str | None:
    s = lab.get("v1", "Secret", name, NS)
    if s is None:
        return None
    data = dict(s.get("data") or {})
    if key not in data:
        return None
    try:
        return base64.b64decode(data[key]).decode()
    except (ValueError, UnicodeDecodeError):
        return "<not text>"


def _pods(lab: Any) -> tuple[int, str]:
    """Ready pods of the app, and why the others wait (the kubelet's reason and message)."""
    dep = lab.get("apps/v1", "Deployment", APP, NS)
    ready = int(((dep or {}).get("status") or {}).get("readyReplicas") or 0)
    why = ""
    for p in lab.cluster.list("v1", "Pod", NS):
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            w = (cs.get("state") or {}).get("waiting")
            if w and w.get("reason"):
                why = f"{w['reason']}: {w.get('message', '')}".rstrip(": ")
                break
        if why:
            break
    if dep is None:
        why = why or "the Deployment is not in the cluster"
    return ready, why


def _pods_text(ready: int, why: str) -> str:
    return f"{APP} has {ready}/2 pods ready" + (f" ({why})" if why else "")


def _way_forward(sha: str | None) -> str:
    """What to do once a credential is in git history (a commit deleting it does not take it out)."""
    rev = sha[:7] if sha else "<that commit>"
    return (f"way forward: a new commit that removes it does not help — commit {rev} still holds it. In this "
            f"workshop, rewrite your workspace's history so no commit holds it: in fleet/, `git rebase -i {rev}~1` and drop or "
            f"edit that commit, or `git reset --hard {rev}~1` (drops it and every later commit; `git reset --hard "
            "workshop-start` goes back to the start of every exercise), then commit again without it. In real "
            "life, rotate the credential: a rewrite does not reach the clones, forks and CI caches that already have "
            "it.")


def _findings(lab: Any, history: History) -> tuple[str, str | None] | None:
    """The first credential the guard's history scan finds in the lab's repository, named by the participant's
    commit; and that commit's sha."""
    from labkit.secrets.guard import scan_history

    findings = scan_history(lab.repo)
    if not findings:
        return None
    f = findings[0]
    try:
        text = lab.repo.read(f.path, f.commit)
    except Exception:  # noqa: BLE001 - the path is there: it was just scanned
        text = None
    c: Commit | None = participant_commit_of(history, f.path, text)
    where = f'your commit {c.sha[:7]} ("{c.message}")' if c else f"commit {f.commit[:7]}"
    more = f" (and {len(findings) - 1} more finding{'s' if len(findings) > 2 else ''})" if len(findings) > 1 else ""
    return (f"plaintext reached git history in {where}: {f.path}: {f.object} field {f.field}{more} — every clone "
            "keeps it, whatever later commits do"), (c.sha if c else f.commit)


def _literal_leak(lab: Any, history: History, original_start: Mapping[str, str], secret: str,
                  what: str) -> tuple[str, str | None] | None:
    """``secret`` (or its base64) anywhere in a committed file: the participant's commits (every file, whatever
    its name — a comment, a README), then every commit of the lab's repository.  ``original_start`` is the folder
    as handed out (a file unchanged since then is the platform's, not a commit of the participant's)."""
    b64 = base64.b64encode(secret.encode()).decode().rstrip("=")

    def found(text: str) -> str | None:
        if secret in text:
            return "in plain text"
        if b64 in text:
            return "base64-encoded"
        return None

    for c in history.commits:
        for path in sorted(c.files):
            text = c.files[path]
            if original_start.get(path) == text:
                continue
            how = found(text)
            if how:
                return (f"{what} is in git history, {how}: your commit {c.sha[:7]} (\"{c.message}\"), {path} — "
                        "every clone keeps it, whatever later commits do"), c.sha
    g = lab.repo.git.git
    for sha in [s for s in g.rev_list("--reverse", "--topo-order", "--all").split() if s]:
        for path in [p for p in g.ls_tree("-r", "-z", "--name-only", sha).split("\0") if p]:
            try:
                text = g.show(f"{sha}:{path}")
            except Exception:  # noqa: BLE001 - not text: nothing to read
                continue
            how = found(text)
            if how:
                c = participant_commit_of(history, path, text)
                where = f'your commit {c.sha[:7]} ("{c.message}")' if c else f"commit {sha[:7]} of the lab's repository"
                return (f"{what} is in git history, {how}: {where}, {path} — every clone keeps it, whatever later "
                        "commits do"), (c.sha if c else None)
    return None


def _leak_verdict(ex: str, leak: tuple[str, str | None], figures: dict[str, Any]) -> Verdict:
    text, sha = leak
    return Verdict(ex, False, text, notes=[_way_forward(sha)], figures=figures)


def _without_ignored_start(history: History, ignored: tuple[str, ...]) -> History:
    """The start state without the git-ignored local files (only a forced ``git add`` commits them)."""
    return History({p: t for p, t in history.start.items() if p not in ignored}, history.commits,
                   history.uncommitted)


def _replay(history: History, **kw: Any) -> AppReplay:
    from labkit.sim.registry import ImageRegistry

    registry = ImageRegistry()
    registry.add(IMAGE, ["1.4.0"])
    return AppReplay.run(history, dialect="flux", first_at=FIX_AT, gap=GAP, registry=registry, **kw)


# ------------------------------------------------------------------ secrets-seal-it

SEAL_LOCAL = "db-credentials.local.yaml"
CERT = "pub-cert.pem"
SEALED_FILE = "db-credentials-sealed.yaml"


def _seal_start() -> dict[str, str]:
    return {
        "README.md": (
            "# secrets-seal-it\n\n"
            f"`app/` is what Flux deploys; `{APP}` needs the Secret `{NS}/db-credentials` (key `password`).\n"
            f"The DBA handed you `{SEAL_LOCAL}` — git-ignored: never commit it.\n"
            f"`{CERT}` is the cluster's sealed-secrets certificate (`kubeseal --fetch-cert > {CERT}`).\n\n"
            "Seal it offline:\n\n"
            f"    python -m labkit.workshop.kubeseal --cert {CERT} -f {SEAL_LOCAL} -w app/{SEALED_FILE}\n\n"
            f"then list `{SEALED_FILE}` in `app/kustomization.yaml`, commit and `labkit check secrets-seal-it`.\n"),
        ".gitignore": "*.local.yaml\n",
        SEAL_LOCAL: _yaml(_plain_secret("db-credentials", "password", DB_PASSWORD, encoded=False)),
        CERT: lab_certificate_pem(KEY_SEED),
        "app/namespace.yaml": _namespace(),
        "app/deployment.yaml": _deployment([_secret_env("DB_PASSWORD", "db-credentials", "password")]),
        KUSTOMIZATION: _kustomization("namespace.yaml", "deployment.yaml"),
        GITOPS: flux_gitops_yaml("apps", "app", interval="5m"),
    }


def _judge_seal(history: History) -> Verdict:
    from labkit.scenarios.applab import AppLab
    from labkit.secrets import sealed
    from labkit.sim.registry import ImageRegistry

    ex = "secrets-seal-it"
    original_start = history.start
    history = _without_ignored_start(history, (SEAL_LOCAL,))

    def factory() -> Any:
        registry = ImageRegistry()
        registry.add(IMAGE, ["1.4.0"])
        lab = AppLab("flux", registry=registry)
        # the controller starts with the key whose certificate is pub-cert.pem (restored from the key backup)
        sealed.install_sealed_secrets(lab.cluster, key_renew_period=0, restore=sealing_key_backup(KEY_SEED))
        return lab

    rep = AppReplay.run(history, dialect="flux", first_at=FIX_AT, gap=GAP, lab_factory=factory)
    lab = rep.lab
    try:
        lab.run(lab.now + 600)
        ready, why = _pods(lab)
        figures: dict[str, Any] = {"ready_pods": ready, "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: {_pods_text(ready, why)}", figures=figures)
        if rep.refused:
            return Verdict(ex, False, f"the platform could not apply your change: {rep.refused[0]}", figures=figures)
        leak = _findings(lab, history) or _literal_leak(lab, history, original_start, DB_PASSWORD,
                                                        "the DBA's password")
        if leak:
            return _leak_verdict(ex, leak, figures)
        st = lab.state("apps")
        if st.ok is False:
            return Verdict(ex, False, f"the Kustomization apps is not Ready: {st.message}", figures=figures)
        ss = lab.get(sealed.API_VERSION, sealed.KIND, "db-credentials", NS)
        if ss is None:
            found = [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}"
                     for o in lab.cluster.list(sealed.API_VERSION, sealed.KIND)]
            return Verdict(ex, False, "no SealedSecret shop/db-credentials reached the cluster"
                           + (f" (found: {', '.join(found)})" if found else " (nothing in app/kustomization.yaml "
                              "points at one)") + f"; {_pods_text(ready, why)}", figures=figures)
        synced = lab.cluster.sealed_secrets.synced(NS, "db-credentials")
        if synced.get("status") != "True":
            return Verdict(ex, False, "the sealed-secrets controller could not unseal SealedSecret "
                           f"shop/db-credentials: {synced.get('message', 'not synced yet')}; "
                           f"{_pods_text(ready, why)}", figures=figures)
        secret = lab.get("v1", "Secret", "db-credentials", NS)
        owners = [r for r in ((secret or {}).get("metadata") or {}).get("ownerReferences") or []
                  if r.get("kind") == sealed.KIND and r.get("controller")]
        if secret is None or not owners:
            return Verdict(ex, False, "Secret shop/db-credentials was not written by the sealed-secrets controller",
                           figures=figures)
        value = _secret_value(lab, "db-credentials", "password")
        if value != DB_PASSWORD:
            return Verdict(ex, False, "Secret shop/db-credentials was unsealed, but its key `password` "
                           + ("is missing" if value is None else "is not the DBA's password (the app cannot log in)")
                           + f"; {_pods_text(ready, why)}", figures=figures)
        if ready < 2:
            return Verdict(ex, False, _pods_text(ready, why), figures=figures)
        n = len(list(lab.repo.git.git.rev_list("--all").split()))
        figures["lab_commits_scanned"] = n
        return Verdict(ex, True, f"the sealed-secrets controller unsealed SealedSecret shop/db-credentials into the "
                       f"Secret {APP} reads (the DBA's password); {APP} has 2/2 pods ready; neither the plaintext "
                       f"guard nor a search for the password itself found it in any of the {n} commits of git history",
                       figures=figures)
    finally:
        lab.close()


def _seal_solution(files: Mapping[str, str]) -> dict[str, str]:
    from labkit.workshop.kubeseal import seal_text

    secret = _yaml(_plain_secret("db-credentials", "password", DB_PASSWORD, encoded=False))
    return {f"app/{SEALED_FILE}": seal_text(secret, files[CERT]), KUSTOMIZATION: _add_resource(files, SEALED_FILE)}


def _seal_plain(files: Mapping[str, str]) -> dict[str, str]:
    return {"app/db-credentials.yaml": _yaml(_plain_secret("db-credentials", "password", DB_PASSWORD)),
            KUSTOMIZATION: _add_resource(files, "db-credentials.yaml")}


def _seal_default_namespace(files: Mapping[str, str]) -> dict[str, str]:
    """Sealed while the Secret said ``namespace: default`` (kubeseal's current namespace), then moved to shop."""
    from labkit.workshop.kubeseal import seal_text

    secret = _yaml(_plain_secret("db-credentials", "password", DB_PASSWORD, namespace="default", encoded=False))
    docs = docs_of(seal_text(secret, files[CERT]))
    for d in docs:
        d["metadata"]["namespace"] = NS
        d["spec"]["template"]["metadata"]["namespace"] = NS
    return {f"app/{SEALED_FILE}": dump_docs(docs), KUSTOMIZATION: _add_resource(files, SEALED_FILE)}


def _remove_plain(files: Mapping[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = dict(_seal_solution(files))
    k = yaml.safe_load(out[KUSTOMIZATION])
    k["resources"] = [r for r in k["resources"] if r != "db-credentials.yaml"]
    out[KUSTOMIZATION] = yaml_dump(k, sort_keys=False)
    out["app/db-credentials.yaml"] = None
    return out


# ------------------------------------------------------------------ secrets-sops-decrypt

SOPS_FILE = "app/api-token.enc.yaml"


def _sops_start() -> dict[str, str]:
    from labkit.secrets import sops

    key = lab_age_key(AGE_SEED)
    config = sops.sops_config([sops.CreationRule(r"app/.*\.enc\.yaml$", (key.recipient,))])
    secret = _plain_secret("api-token", "token", API_TOKEN, encoded=False)
    return {
        "README.md": (
            "# secrets-sops-decrypt\n\n"
            f"`{SOPS_FILE}` is the `api-token` Secret encrypted with SOPS for the cluster's age key "
            "(recipient in `.sops.yaml`); the private key is already in the cluster, in the Secret "
            "`flux-system/sops-age` (key `age.agekey`), created by the platform team.\n"
            f"Make Flux decrypt it: edit `{GITOPS}`, commit, `labkit check secrets-sops-decrypt`.\n"),
        ".sops.yaml": config,
        SOPS_FILE: sops.encrypt_manifest(secret, path=SOPS_FILE, config=config),
        "app/namespace.yaml": _namespace(),
        "app/deployment.yaml": _deployment([_secret_env("API_TOKEN", "api-token", "token")]),
        KUSTOMIZATION: _kustomization("namespace.yaml", "deployment.yaml", "api-token.enc.yaml"),
        GITOPS: flux_gitops_yaml("apps", "app", interval="5m"),
    }


def _judge_sops(history: History) -> Verdict:
    ex = "secrets-sops-decrypt"
    key = lab_age_key(AGE_SEED)

    def platform_key(lab: Any) -> None:
        lab.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "sops-age", "namespace": "flux-system"},
                           "stringData": {"age.agekey": key.keyfile()}}, field_manager="kubectl")

    rep = _replay(history, on_start=platform_key)
    lab = rep.lab
    try:
        lab.run(lab.now + 600)
        ready, why = _pods(lab)
        st = lab.state("apps")
        figures: dict[str, Any] = {"ready_pods": ready, "kustomization_ready": st.ok, "commits": len(history.commits)}
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: the Kustomization apps is not Ready ({st.message}); "
                           f"{_pods_text(ready, why)}", figures=figures)
        if rep.refused:
            return Verdict(ex, False, f"the platform could not apply your change: {rep.refused[0]}", figures=figures)
        leak = _findings(lab, history)
        if leak:
            return _leak_verdict(ex, leak, figures)
        if st.ok is not True:
            return Verdict(ex, False, f"the Kustomization apps is not Ready: {st.message or 'no reconcile finished'}; "
                           f"{_pods_text(ready, why)}", figures=figures)
        value = _secret_value(lab, "api-token", "token")
        if value != API_TOKEN:
            return Verdict(ex, False, "Secret shop/api-token "
                           + ("is not in the cluster" if value is None else "does not hold the decrypted token")
                           + f"; {_pods_text(ready, why)}", figures=figures)
        if ready < 2:
            return Verdict(ex, False, _pods_text(ready, why), figures=figures)
        return Verdict(ex, True, f"kustomize-controller decrypted {SOPS_FILE} during the build with the cluster's age "
                       f"key (Kustomization apps Ready: {st.message}); Secret shop/api-token holds the token and "
                       f"{APP} has 2/2 pods ready; git history holds only ciphertext", figures=figures)
    finally:
        lab.close()


def _decryption(secret_ref: str | None):
    def fn(d: dict[str, Any]) -> None:
        dec: dict[str, Any] = {"provider": "sops"}
        if secret_ref is not None:
            dec["secretRef"] = {"name": secret_ref}
        d["spec"]["decryption"] = dec
    return edit_docs(GITOPS, fn, kind="Kustomization")


def _sops_plain(files: Mapping[str, str]) -> dict[str, str]:
    return {SOPS_FILE: _yaml(_plain_secret("api-token", "token", API_TOKEN, encoded=False))}


# ------------------------------------------------------------------ secrets-external-refresh

ROTATIONS = 3
MAX_DELAY = 900.0
CALL_BUDGET_PER_H = 20
EXTERNAL = "app/payments-external.yaml"


def _external_start() -> dict[str, str]:
    from labkit.secrets import external as ext

    store = {"apiVersion": ext.API_VERSION, "kind": "SecretStore", "metadata": {"name": "aws", "namespace": NS},
             "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                           "auth": {"jwt": {"serviceAccountRef": {"name": "shop"}}}}}}}
    es = {"apiVersion": ext.API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "payments", "namespace": NS},
          "spec": {"refreshInterval": "24h", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                   "target": {"name": "payments-api", "creationPolicy": "Owner"},
                   "data": [{"secretKey": "api-key", "remoteRef": {"key": "prod/payments", "property": "api-key"}}]}}
    return {
        "README.md": (
            "# secrets-external-refresh\n\n"
            "The payments API key lives in the secrets manager (`prod/payments`); the ExternalSecret in "
            f"`{EXTERNAL}` copies it into the Secret `{NS}/payments-api`. The security team rotates the key in the "
            "manager — no commit. Make rotations reach the cluster within 15 minutes without hammering the manager "
            f"(at most {CALL_BUDGET_PER_H} reads an hour). Edit, commit, `labkit check secrets-external-refresh`.\n"),
        "app/namespace.yaml": _namespace(),
        "app/secret-store.yaml": _yaml(store),
        EXTERNAL: _yaml(es),
        "app/deployment.yaml": _deployment([_secret_env("PAYMENTS_API_KEY", "payments-api", "api-key")]),
        KUSTOMIZATION: _kustomization("namespace.yaml", "secret-store.yaml", "payments-external.yaml",
                                      "deployment.yaml"),
        GITOPS: flux_gitops_yaml("apps", "app", interval="5m"),
    }


def _judge_external(history: History) -> Verdict:
    from labkit.core.clock import rng_for
    from labkit.secrets import external as ext

    ex = "secrets-external-refresh"
    holder: dict[str, Any] = {}

    def manager_and_operator(lab: Any) -> None:
        manager = ext.SecretsManager(lab.env, lab.log, seed=0)
        manager.create_secret("prod/payments", {"api-key": PAYMENTS[0]})
        manager.allow(f"system:serviceaccount:{NS}:shop", "prod/*")
        ext.install_external_secrets(lab.cluster, manager)
        holder["manager"] = manager

    rep = _replay(history, on_start=manager_and_operator)
    lab = rep.lab
    manager = holder["manager"]
    try:
        settle = lab.now + 600
        lab.run(settle)
        if rep.refused:
            return Verdict(ex, False, f"the platform could not apply your change: {rep.refused[0]}")
        # three rotations, one in each of three 2-hour windows, at seeded times
        rng = rng_for(0, "secrets-external-refresh")
        rotations = [settle + i * 7200.0 + rng.uniform(300.0, 6600.0) for i in range(ROTATIONS)]
        end = settle + ROTATIONS * 7200.0
        delays: list[float | None] = []
        for i, at in enumerate(rotations):
            lab.run(at)
            manager.rotate("prod/payments", {"api-key": PAYMENTS[i + 1]})
            nxt = rotations[i + 1] if i + 1 < len(rotations) else end
            seen = lab.run_until(lambda v=PAYMENTS[i + 1]: _secret_value(lab, "payments-api", "api-key") == v,
                                 timeout=nxt - lab.now, step=5.0)
            delays.append(None if seen is None else seen - at)
            lab.run(nxt)
        calls = [e for e in lab.events(component=ext.MANAGER_COMPONENT, event="GetSecretValue", since=settle)]
        per_hour = len(calls) / ((end - settle) / 3600.0)
        ready, why = _pods(lab)
        figures = {"delays_s": [None if d is None else round(d, 1) for d in delays],
                   "reads_per_hour": round(per_hour, 1), "ready_pods": ready, "commits": len(history.commits)}
        shown = ", ".join("never" if d is None else fmt_s(d) for d in delays)
        es = lab.get(ext.API_VERSION, "ExternalSecret", "payments", NS)
        ready_cond = next((c for c in ((es or {}).get("status") or {}).get("conditions") or []
                           if c.get("type") == "Ready"), {})
        if es is None or ready_cond.get("status") != "True":
            return Verdict(ex, False, "ExternalSecret shop/payments is not Ready: "
                           f"{ready_cond.get('message') or 'not in the cluster'}; {_pods_text(ready, why)}",
                           figures=figures)
        late = [d for d in delays if d is None or d > MAX_DELAY]
        head = f"the {ROTATIONS} rotations in the secrets manager reached Secret shop/payments-api after: {shown}"
        if all(d is None for d in delays):
            head = (f"none of the {ROTATIONS} rotations in the secrets manager reached Secret shop/payments-api "
                    f"(watched for {fmt_s(end - settle)}, each until the next rotation)")
        cost = f"the operator read the manager {per_hour:.1f} times an hour (budget {CALL_BUDGET_PER_H})"
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: {head} (goal: each within {fmt_s(MAX_DELAY)})", figures=figures)
        if any(d is None for d in delays):
            missed = sum(d is None for d in delays)
            return Verdict(ex, False, f"{head}: the value in the cluster stayed stale ({missed} of {ROTATIONS} "
                           f"rotations never arrived; goal: each within {fmt_s(MAX_DELAY)}); {cost}", figures=figures)
        if late:
            return Verdict(ex, False, f"{head} — {len(late)} of them later than the goal of "
                           f"{fmt_s(MAX_DELAY)}; {cost}",
                           figures=figures)
        if per_hour > CALL_BUDGET_PER_H:
            return Verdict(ex, False, f"{head} (in time), but {cost}: over budget", figures=figures)
        if ready < 2:
            return Verdict(ex, False, f"{head}; but {_pods_text(ready, why)}", figures=figures)
        return Verdict(ex, True, f"{head} (goal: each within {fmt_s(MAX_DELAY)}); {cost}; no commit needed",
                       figures=figures)
    finally:
        lab.close()


def _refresh(value: str, *, where: str = "ExternalSecret"):
    def fn(d: dict[str, Any]) -> None:
        d["spec"]["refreshInterval"] = value
    if where == "ExternalSecret":
        return edit_docs(EXTERNAL, fn, kind="ExternalSecret")
    return edit_docs("app/secret-store.yaml", fn, kind="SecretStore")


EXERCISES = (
    Exercise(
        id="secrets-seal-it",
        scenario=SCENARIO,
        title="Seal the database password",
        goal="shop-api's pods start with DB_PASSWORD from Secret shop/db-credentials, written by the sealed-secrets "
             "controller from a SealedSecret in git and holding the DBA's password — and the plaintext guard finds "
             "no credential in any commit of the repository's history.",
        task="In fleet/secrets-seal-it/: seal db-credentials.local.yaml with the certificate "
             "(`python -m labkit.workshop.kubeseal --cert pub-cert.pem -f db-credentials.local.yaml "
             "-w app/db-credentials-sealed.yaml`), list the file in app/kustomization.yaml, commit, then "
             "`labkit check secrets-seal-it`.",
        start=_seal_start,
        judge=_judge_seal,
        solution=Change("seal with the cluster's certificate", "shop: sealed db credentials", _seal_solution),
        wrong=(
            Change("commit the Secret base64-encoded", "shop: db credentials (base64)", _seal_plain,
                   expect="plaintext reached git history"),
            Change("commit it plain, then replace it by a SealedSecret", "shop: db credentials", _seal_plain,
                   expect="plaintext reached git history",
                   then=Change("", "shop: seal db credentials, remove the plain Secret", _remove_plain)),
            Change("seal in namespace default, then move it to shop", "shop: sealed db credentials",
                   _seal_default_namespace, expect="no key could decrypt secret"),
        ),
        hints=("Git never forgets: whatever reaches a commit — even one reverted a minute later — stays in every "
               "clone. Only ciphertext that the cluster alone can open may go in.",
               "A SealedSecret is encrypted for the controller's public certificate (pub-cert.pem). Seal the local "
               "Secret with it and add the SealedSecret to app/kustomization.yaml — the controller turns it into "
               "the Secret.",
               "The seal binds name and namespace (strict scope): seal the Secret exactly as it must appear "
               "(shop/db-credentials), and do not edit the SealedSecret afterwards."),
        minutes=15,
    ),
    Exercise(
        id="secrets-sops-decrypt",
        scenario=SCENARIO,
        title="Let Flux decrypt a SOPS-encrypted Secret",
        goal="The Kustomization apps is Ready at your last commit, Secret shop/api-token holds the decrypted token and "
             "shop-api has 2/2 pods ready — with only ciphertext in git history.",
        task="Edit the Kustomization in fleet/secrets-sops-decrypt/gitops/apps.yaml so Flux can decrypt "
             "app/api-token.enc.yaml with the age key Secret flux-system/sops-age; commit, then "
             "`labkit check secrets-sops-decrypt`.",
        start=_sops_start,
        judge=_judge_sops,
        solution=Change("spec.decryption with the sops-age Secret", "gitops: decrypt SOPS secrets with sops-age",
                        _decryption("sops-age")),
        wrong=(
            Change("a secretRef that does not exist", "gitops: decrypt with the age key",
                   _decryption("sops-age-key"), expect='secrets "sops-age-key" not found'),
            Change("commit the decrypted Secret instead", "shop: api token", _sops_plain,
                   expect="plaintext reached git history"),
        ),
        hints=("The Kustomization's Ready message says why nothing is applied: Flux refuses to apply a SOPS-encrypted "
               "Secret it was not told how to decrypt.",
               "kustomize-controller decrypts during the build when the Kustomization has `spec.decryption` "
               "(provider sops) naming the Secret that holds the age key, in the Kustomization's namespace.",
               "spec.decryption: {provider: sops, secretRef: {name: sops-age}}"),
        minutes=10,
    ),
    Exercise(
        id="secrets-external-refresh",
        scenario=SCENARIO,
        title="Rotations that reach the cluster",
        goal=f"Each of {ROTATIONS} rotations of prod/payments in the secrets manager (no commit) reaches Secret "
             f"shop/payments-api within 15 minutes, while the operator reads the manager at most "
             f"{CALL_BUDGET_PER_H} times an hour.",
        task="Edit the ExternalSecret in fleet/secrets-external-refresh/app/payments-external.yaml, commit, then "
             "`labkit check secrets-external-refresh`.",
        start=_external_start,
        judge=_judge_external,
        solution=Change("refreshInterval 10m", "payments: refresh the API key every 10 minutes", _refresh("10m")),
        wrong=(
            Change("refreshInterval 0 ('always')", "payments: refresh always", _refresh("0"),
                   expect="stayed stale"),
            Change("refreshInterval 1h", "payments: refresh hourly", _refresh("1h"),
                   expect="later than the goal"),
            Change("refreshInterval 1m", "payments: refresh every minute", _refresh("1m"), expect="over budget"),
        ),
        hints=("The operator copies the value when the ExternalSecret changes and then once per refreshInterval; a "
               "rotation in the manager is not an event the cluster hears about.",
               "The worst-case delay is one refreshInterval; each refresh is one read of the manager. Pick an "
               "interval that satisfies both numbers. (A refreshInterval of 0 means: never refresh.)",
               "spec.refreshInterval: 10m on the ExternalSecret (not on the SecretStore)."),
        minutes=10,
    ),
)
