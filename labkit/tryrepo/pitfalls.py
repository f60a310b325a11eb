"""GitOps pitfalls in a repository: each with the file and line, the object, and the fix the tools document.

Every check reads the *rendered* objects of each reconcile unit (what the
controller would apply, after kustomize) and maps findings back to the YAML a
person edits (``labkit.tryrepo.index``): the last document in the kustomize
closure that sets the offending field — an overlay's patch rather than the
base, when the patch wins.

============================  ========  ===========================================================
id                            severity  what
============================  ========  ===========================================================
``hpa-replicas``              warning   ``spec.replicas`` in git on a workload an HPA (or KEDA
                                        ScaledObject) scales: every reconcile resets it (flux2 #1842,
                                        argo-cd #5105)
``statefulset-vct-changed``   error     ``volumeClaimTemplates`` changed between two revisions in
                                        history: the sync fails with the API server's Forbidden
                                        message (kustomize-controller #679, flux2 #3573)
``stateful-cr-prune``         error     a stateful operator's custom resource (CloudNativePG Cluster,
                                        Strimzi Kafka, Redis, MySQL, MongoDB ...) under prune with no
                                        prune safeguard: removing it from git deletes the database
``job-not-hook``              warning   a Job applied as a plain resource: its template is immutable,
                                        so the next change fails the sync (argo-cd #7430) and it never
                                        runs again
``plaintext-secret``          error     a Secret (or secretGenerator, or credential literal) in plain
                                        text or base64 in the repository or its history
``no-health-check``           warning   a Deployment no health check covers (Flux: no ``wait: true``
                                        and not in ``healthChecks``): the Kustomization is Ready while
                                        the rollout fails
``migration-backoff``         warning   a migration Job (migrate / flyway / liquibase / alembic)
                                        without ``backoffLimit: 0``: a failed, non-idempotent
                                        migration is retried six times
``mutable-image-tag``         warning   ``:latest`` or no tag: what runs is not what git says, and a
                                        rollback to the same manifest changes nothing
``default-namespace``         warning   a namespaced object with no namespace: it lands in
                                        ``default``
============================  ========  ===========================================================

Where a finding was also *observed* in the simulated run — the Kustomization
reported Ready while the Deployment it did not check stalled, a StatefulSet
update refused — the message says so, with the virtual time.  Fix texts cite
the documentation they come from (``docs``: Flux, Argo CD and Kubernetes URLs).
Findings with the same id at the same file and line (one base deployment used
by two overlays) are merged, their objects listed together.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import yaml

from labkit.core.errors import LabkitError
from labkit.gitops.yamlbounds import (MAX_YAML_BYTES, YamlBudget, YamlLimitError, decode_yaml_bytes, load_documents,
                                      read_yaml_file)
from labkit.tryrepo.discovery import Discovery, Unit
from labkit.tryrepo.history import RevisionRenders, forbidden_update, vct_signature
from labkit.tryrepo.index import NodeCache, SourceDoc, SourceIndex
from labkit.tryrepo.model import Pitfall
from labkit.tryrepo.secrets import scan_file
from labkit.tryrepo.simsetup import images_of
from labkit.tryrepo.source import RepoSource

__all__ = ["find_pitfalls", "DOCS", "STATEFUL_KINDS", "is_stateful_cr", "PITFALL_IDS"]

PITFALL_IDS = ("hpa-replicas", "statefulset-vct-changed", "stateful-cr-prune", "job-not-hook", "plaintext-secret",
               "no-health-check", "migration-backoff", "mutable-image-tag", "default-namespace")

FLUX_KS_DOC = "https://fluxcd.io/flux/components/kustomize/kustomizations/"
ARGO_DOC = "https://argo-cd.readthedocs.io/en/stable/user-guide/"
DOCS = {
    "flux-ignore": "https://fluxcd.io/blog/2026/08/ignore-rules-drift-detection/",
    "flux-ks": FLUX_KS_DOC,
    "flux-prune": FLUX_KS_DOC + "#prune",
    "flux-wait": FLUX_KS_DOC + "#wait",
    "flux-health": FLUX_KS_DOC + "#health-checks",
    "flux-force": FLUX_KS_DOC + "#force",
    "flux-target-ns": FLUX_KS_DOC + "#target-namespace",
    "flux-jobs": "https://fluxcd.io/flux/use-cases/running-jobs/",
    "flux-sops": "https://fluxcd.io/flux/guides/mozilla-sops/",
    "flux-sealed": "https://fluxcd.io/flux/guides/sealed-secrets/",
    "flux-image-update": "https://fluxcd.io/flux/guides/image-update/",
    "argo-imperative": ARGO_DOC + "best_practices/#leaving-room-for-imperativeness",
    "argo-respect-ignore": ARGO_DOC + "sync-options/#respect-ignore-difference-configs",
    "argo-diffing": ARGO_DOC + "diffing/",
    "argo-no-prune": ARGO_DOC + "sync-options/#no-prune-resources",
    "argo-replace": ARGO_DOC + "sync-options/#replace-resource-instead-of-applying-changes",
    "argo-hooks": ARGO_DOC + "resource_hooks/",
    "argo-secrets": "https://argo-cd.readthedocs.io/en/stable/operator-manual/secret-management/",
    "k8s-hpa": "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"
               "#migrating-deployments-and-statefulsets-to-horizontal-autoscaling",
    "k8s-sts-limitations": "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#limitations",
    "k8s-job-backoff": "https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-backoff-failure-policy",
    "k8s-images": "https://kubernetes.io/docs/concepts/containers/images/#image-names",
    "k8s-config-images": "https://kubernetes.io/docs/concepts/configuration/overview/#container-images",
    "k8s-secrets": "https://kubernetes.io/docs/concepts/configuration/secret/",
    "k8s-namespaces": "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
    "kustomize-namespace": "https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/namespace/",
}

#: ``(API group pattern, kind pattern)`` of stateful operators' custom resources whose deletion drops data.
STATEFUL_KINDS: tuple[tuple[str, str], ...] = (
    (r"postgresql\.cnpg\.io", r"Cluster|Database"),
    (r"acid\.zalan\.do", r"postgresql"),
    (r"postgres-operator\.crunchydata\.com", r"PostgresCluster"),
    (r"kafka\.strimzi\.io", r"Kafka|KafkaNodePool|KafkaTopic"),
    (r"redis\.redis\.opstreelabs\.in", r"Redis\w*"),
    (r"databases\.spotahome\.com", r"RedisFailover"),
    (r"mysql\.oracle\.com", r"InnoDBCluster"),
    (r"moco\.cybozu\.com", r"MySQLCluster"),
    (r"pxc\.percona\.com", r"PerconaXtraDBCluster"),
    (r"psmdb\.percona\.com", r"PerconaServerMongoDB"),
    (r"pgv2\.percona\.com", r"PerconaPGCluster"),
    (r"mongodbcommunity\.mongodb\.com", r"MongoDBCommunity"),
    (r"mongodb\.com", r"MongoDB\w*"),
    (r"(k8s\.)?mariadb\.(com|mmontes\.io)", r"MariaDB|Database"),
    (r"rabbitmq\.com", r"RabbitmqCluster"),
    (r"elasticsearch\.k8s\.elastic\.co", r"Elasticsearch"),
    (r"cassandra\.datastax\.com", r"CassandraDatacenter"),
    (r"clickhouse\.altinity\.com", r"ClickHouseInstallation"),
    (r"minio\.min\.io", r"Tenant"),
    (r"crdb\.cockroachlabs\.com", r"CrdbCluster"),
)
_GENERIC_STATEFUL = re.compile(
    r"postgres|mysql|maria|mongo|redis|valkey|kafka|cassandra|elastic|clickhouse|rabbit|cockroach|zookeeper|"
    r"couchbase|tidb|vitess|etcd|dragonfly|minio|database", re.I)
_NOT_STATEFUL_GROUPS = re.compile(r"(^|\.)(k8s\.io|fluxcd\.io|argoproj\.io|monitoring\.coreos\.com)$")
_MIGRATION = re.compile(r"migrat|flyway|liquibase|alembic", re.I)
FLUX_PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
FLUX_FORCE_ANNOTATION = "kustomize.toolkit.fluxcd.io/force"
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
ARGO_HOOK = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"


def is_stateful_cr(api_version: str, kind: str) -> bool:
    """Whether ``group/kind`` is a stateful operator's custom resource (see ``STATEFUL_KINDS``)."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    if not group or "." not in group or _NOT_STATEFUL_GROUPS.search(group):
        return False
    for g, k in STATEFUL_KINDS:
        if re.fullmatch(g, group) and re.fullmatch(k, kind):
            return True
    return bool(_GENERIC_STATEFUL.search(group) or _GENERIC_STATEFUL.search(kind))


def _md(o: dict[str, Any]) -> dict[str, Any]:
    md = o.get("metadata")
    return md if isinstance(md, dict) else {}


def _ann(o: dict[str, Any]) -> dict[str, str]:
    a = _md(o).get("annotations")
    return {str(k): str(v) for k, v in a.items()} if isinstance(a, dict) else {}


def _label(o: dict[str, Any], ns_default: str = "") -> str:
    md = _md(o)
    ns = md.get("namespace") or ns_default
    return f"{o.get('kind')}/{ns}/{md.get('name')}" if ns else f"{o.get('kind')}/{md.get('name')}"


def _sync_options(o: dict[str, Any]) -> set[str]:
    return {x.strip() for x in _ann(o).get(ARGO_SYNC_OPTIONS, "").split(",") if x.strip()}


@dataclass
class _Ctx:
    source: RepoSource
    index: SourceIndex
    disc: Discovery
    runs: dict[str, Any]
    history: RevisionRenders | None
    namespaced: Callable[[str, str], bool | None]
    out: list[Pitfall]

    def add(self, pid: str, sev: str, where: tuple[str | None, int | None], obj: str, message: str, fix: str,
            docs: list[str], target: str | None = None) -> None:
        self.out.append(Pitfall(pid, sev, where[0], where[1], obj, message, fix, docs, target))

    def where(self, unit: Unit, obj: dict[str, Any], path: list[Any]) -> tuple[str | None, int | None]:
        srcs = self.index.field_sources(obj, path, unit.closure)
        if srcs:
            d = srcs[-1]
            return d.file, d.line_of(path)
        doc = self.index.locate(obj, unit.closure)
        if doc is not None:
            return doc.file, doc.line_of(path)
        gen = self.index.generator_of(obj, unit.closure)
        if gen is not None:
            return gen
        return (unit.file, unit.line) if unit.file else (None, None)

    def unit_where(self, unit: Unit, path: list[Any]) -> tuple[str | None, int | None]:
        if unit.doc is not None:
            return unit.doc.file, unit.doc.line_of(path)
        return None, None

    def observed(self, target: str, cluster_key: str) -> Any:
        run = self.runs.get(target)
        if run is None:
            return None
        return next((o for o in run.objects if o.key == cluster_key), None)

    def unit_result(self, target: str, ref: str) -> Any:
        run = self.runs.get(target)
        if run is None:
            return None
        return next((u for u in run.units if u.ref == ref), None)


def _units(ctx: _Ctx) -> Iterable[tuple[str, Unit]]:
    seen: set[int] = set()
    for t in ctx.disc.targets:
        for u in t.units:
            if id(u) not in seen and u.rendered:
                seen.add(id(u))
                yield t.name, u


def _ns_of(u: Unit, o: dict[str, Any]) -> str:
    ns = _md(o).get("namespace")
    if ns:
        return str(ns)
    if u.dialect == "argo":
        return str((u.spec.get("destination") or {}).get("namespace") or "default")
    return "default"


# ---------------------------------------------------------------------------- checks

def _hpa_replicas(ctx: _Ctx) -> None:
    for tname, u in _units(ctx):
        for hpa in u.objects:
            kind = hpa.get("kind")
            if kind not in ("HorizontalPodAutoscaler", "ScaledObject"):
                continue
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            tkind, tname_ = ref.get("kind") or "Deployment", ref.get("name")
            ns = _ns_of(u, hpa)
            for w in u.objects:
                if w.get("kind") != tkind or _md(w).get("name") != tname_ or _ns_of(u, w) != ns:
                    continue
                if "replicas" not in (w.get("spec") or {}):
                    continue
                if _replicas_ignored(u, w):
                    continue
                where = ctx.where(u, w, ["spec", "replicas"])
                spec = hpa.get("spec") or {}
                rng = f"{spec.get('minReplicas', 1)}..{spec.get('maxReplicas', '?')}" if kind != "ScaledObject" else \
                    f"{spec.get('minReplicaCount', 0)}..{spec.get('maxReplicaCount', 100)}"
                msg = (f"replicas: {w['spec']['replicas']} is set in git on {tkind} {tname_}, which {kind} "
                       f"{_md(hpa).get('name')} scales ({rng}): every reconcile sets it back to "
                       f"{w['spec']['replicas']} and the autoscaler scales it again, so the replica count flaps "
                       "(flux2 #1842, argo-cd #5105)")
                if u.dialect == "argo":
                    partial = _argo_ignores_replicas(u, w, respect=False)
                    if partial:
                        msg += ("; ignoreDifferences hides the diff, but without RespectIgnoreDifferences=true a "
                                "sync still writes the field (argo-cd #7820)")
                    fix = ("Remove spec.replicas from the manifest (and its patches) and let the HPA own it, or keep "
                           "it and add ignoreDifferences for /spec/replicas together with the sync option "
                           "RespectIgnoreDifferences=true.")
                    docs = [DOCS["argo-imperative"], DOCS["argo-respect-ignore"], DOCS["k8s-hpa"]]
                else:
                    fix = ("Remove spec.replicas from the manifest (and its patches) — under server-side apply the "
                           "field then drops to the default of 1 until the HPA's next sync — or keep it and exclude "
                           "it from drift correction with the Kustomization's spec.ignore: "
                           f"[{{paths: [/spec/replicas], target: {{kind: {tkind}, name: {tname_}}}}}].")
                    docs = [DOCS["flux-ignore"], DOCS["flux-ks"], DOCS["k8s-hpa"]]
                ctx.add("hpa-replicas", "warning", where, _label(w, ns), msg, fix, docs, tname)


def _replicas_ignored(u: Unit, w: dict[str, Any]) -> bool:
    if u.dialect == "flux":
        for rule in u.spec.get("ignore") or []:
            if isinstance(rule, str):
                if rule == "/spec/replicas":
                    return True
                continue
            if not isinstance(rule, dict) or "/spec/replicas" not in (rule.get("paths") or []):
                continue
            tgt = rule.get("target") or {}
            if (not tgt.get("kind") or tgt.get("kind") == w.get("kind")) and \
                    (not tgt.get("name") or re.fullmatch(str(tgt["name"]), str(_md(w).get("name")))):
                return True
        return False
    return _argo_ignores_replicas(u, w, respect=True)


def _argo_ignores_replicas(u: Unit, w: dict[str, Any], *, respect: bool) -> bool:
    rules = u.spec.get("ignoreDifferences") or []
    hit = any(isinstance(r, dict) and r.get("kind") in (None, w.get("kind")) and
              (not r.get("name") or r.get("name") == _md(w).get("name")) and
              ("/spec/replicas" in (r.get("jsonPointers") or []) or
               ".spec.replicas" in (r.get("jqPathExpressions") or []))
              for r in rules)
    if not respect:
        return hit
    opts = set(((u.spec.get("syncPolicy") or {}).get("syncOptions")) or []) | _sync_options(w)
    return hit and "RespectIgnoreDifferences=true" in opts


def _stateful_prune(ctx: _Ctx) -> None:
    for tname, u in _units(ctx):
        if u.dialect == "flux":
            prune_on = bool(u.spec.get("prune"))
        else:
            auto = (u.spec.get("syncPolicy") or {}).get("automated")
            prune_on = isinstance(auto, dict) and bool(auto.get("prune"))
        if not prune_on:
            continue
        for o in u.objects:
            if not is_stateful_cr(str(o.get("apiVersion") or ""), str(o.get("kind") or "")):
                continue
            ann = _ann(o)
            if u.dialect == "flux" and ann.get(FLUX_PRUNE_ANNOTATION, "").lower() == "disabled":
                continue
            if u.dialect == "argo" and ({"Prune=false", "Delete=false"} & _sync_options(o)):
                continue
            where = ctx.where(u, o, ["metadata", "annotations"] if ann else ["metadata"])
            label = _label(o, _ns_of(u, o))
            if u.dialect == "flux":
                msg = (f"{o.get('kind')} ({o.get('apiVersion')}) is a stateful operator's resource under "
                       f"{u.ref} with prune: true and no prune safeguard: removing it from git, renaming it or "
                       "moving it to another Kustomization deletes it, and the operator deletes the database "
                       "with it")
                fix = (f"Annotate it {FLUX_PRUNE_ANNOTATION}: disabled (Flux then never garbage-collects it), "
                       "and keep data-bearing resources in their own Kustomization.")
                docs = [DOCS["flux-prune"]]
            else:
                msg = (f"{o.get('kind')} ({o.get('apiVersion')}) is a stateful operator's resource under "
                       f"{u.ref} with automated prune and no Prune=false: removing it from git deletes it, and "
                       "the operator deletes the database with it")
                fix = (f"Annotate it {ARGO_SYNC_OPTIONS}: Prune=false (the app then shows OutOfSync instead of "
                       "deleting; add Delete=false to survive deleting the Application too).")
                docs = [DOCS["argo-no-prune"]]
            ctx.add("stateful-cr-prune", "error", where, label, msg, fix, docs, tname)


def short_api_message(msg: str | None) -> str | None:
    """An API error with Go struct dumps (``core.PodTemplateSpec{...}``) elided, as a one-line summary."""
    if msg is None or len(msg) < 240:
        return msg
    return re.sub(r"Invalid value: ([A-Za-z0-9_.]+)\{.*?\}: field is immutable",
                  r"Invalid value: \1{...}: field is immutable", msg, flags=re.S)


def _job_message(job: dict[str, Any], manager: str) -> str | None:
    """The API server's refusal of a changed Job template, from the simulator's admission."""
    newer = copy.deepcopy(job)
    tmpl = newer.setdefault("spec", {}).setdefault("template", {})
    tmpl.setdefault("metadata", {}).setdefault("annotations", {})["labkit.dev/changed"] = "next-revision"
    return short_api_message(forbidden_update(job, newer, field_manager=manager))


def _hook_types(o: dict[str, Any]) -> list[str]:
    ann = _ann(o)
    if ARGO_HOOK in ann:
        return [x.strip() for x in ann[ARGO_HOOK].split(",") if x.strip()]
    if HELM_HOOK in ann:
        return [x.strip() for x in ann[HELM_HOOK].split(",") if x.strip()]
    return []


def _jobs(ctx: _Ctx) -> None:
    cache: dict[str, str | None] = {}
    for tname, u in _units(ctx):
        for o in u.objects:
            if o.get("kind") != "Job" or not str(o.get("apiVersion", "")).startswith("batch/"):
                continue
            label = _label(o, _ns_of(u, o))
            spec = o.get("spec") or {}
            if _is_migration(o) and spec.get("backoffLimit") != 0:
                where = ctx.where(u, o, ["spec", "backoffLimit"] if "backoffLimit" in spec else ["spec"])
                limit = spec.get("backoffLimit", 6)
                default = " (the default)" if "backoffLimit" not in spec else ""
                msg = (f"migration Job with backoffLimit {limit}{default}: "
                       f"a failed migration is retried up to {limit} more times against a half-migrated database "
                       "instead of stopping the deploy")
                fix = ("Set spec.backoffLimit: 0 so the first failure fails the Job (and, as a hook, the sync), and "
                       "make migrations versioned and idempotent.")
                docs = [DOCS["k8s-job-backoff"], DOCS["argo-hooks"] if u.dialect == "argo" else DOCS["flux-jobs"]]
                ctx.add("migration-backoff", "warning", where, label, msg, fix, docs, tname)
            if u.dialect == "argo" and _hook_types(o):
                continue
            if u.dialect == "flux" and (bool(u.spec.get("force")) or
                                        _ann(o).get(FLUX_FORCE_ANNOTATION, "").lower() == "enabled"):
                continue
            manager = "kustomize-controller" if u.dialect == "flux" else "argocd-controller"
            ck = label + manager
            if ck not in cache:
                cache[ck] = _job_message(o, manager)
            refusal = cache[ck]
            where = ctx.where(u, o, ["spec", "template"])
            said = f" with: {refusal}" if refusal else ""
            msg = (f"Job applied as a plain resource under {u.ref}: it runs once, and its spec.template is "
                   f"immutable, so the first change to it (a new image tag) fails the whole sync{said}")
            if u.dialect == "argo":
                fix = (f"Make it a hook: annotate {ARGO_HOOK}: PreSync (or Sync / PostSync) and "
                       "argocd.argoproj.io/hook-delete-policy: BeforeHookCreation, so every sync creates it afresh.")
                docs = [DOCS["argo-hooks"]]
            else:
                fix = ("Put Jobs in their own Kustomization with spec.force: true (an immutable change recreates the "
                       f"Job) ordered with dependsOn, or annotate the Job {FLUX_FORCE_ANNOTATION}: Enabled.")
                docs = [DOCS["flux-jobs"], DOCS["flux-force"]]
            ctx.add("job-not-hook", "warning", where, label, msg, fix, docs, tname)


def _is_migration(o: dict[str, Any]) -> bool:
    md = _md(o)
    texts = [str(md.get("name") or "")]
    texts += [f"{k}={v}" for k, v in (md.get("labels") or {}).items()] if isinstance(md.get("labels"), dict) else []
    pod = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        if isinstance(c, dict):
            texts.append(str(c.get("name") or ""))
            texts.append(str(c.get("image") or ""))
            texts += [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
    return any(_MIGRATION.search(t) for t in texts)


def _health(ctx: _Ctx) -> None:
    for tname, u in _units(ctx):
        if u.dialect != "flux" or u.synthesized or u.spec.get("wait"):
            continue
        checks = u.spec.get("healthChecks") or []
        for o in u.objects:
            if o.get("kind") != "Deployment":
                continue
            md = _md(o)
            ns = _ns_of(u, o)
            if any(isinstance(h, dict) and h.get("kind") == "Deployment" and h.get("name") == md.get("name") and
                   (h.get("namespace") or u.namespace) == ns for h in checks):
                continue
            where = ctx.unit_where(u, ["spec", "healthChecks"] if checks else ["spec"])
            label = _label(o, ns)
            msg = (f"{u.ref} has no wait: true and does not list this Deployment in healthChecks: it reports Ready "
                   "as soon as the apply succeeds, so a bad image or a crash loop leaves it Ready and every "
                   "dependsOn on it proceeds")
            obs = ctx.observed(tname, label)
            ur = ctx.unit_result(tname, u.ref)
            if obs is not None and ur is not None and ur.status == "Ready" and ur.ready_at is not None \
                    and obs.outcome in ("failed", "progressing"):
                msg += (f" — in this run {u.ref} was Ready at {ur.ready_at:.1f}s while the Deployment was "
                        f"{obs.outcome}: {obs.message}")
            fix = "Set spec.wait: true on the Kustomization, or list the Deployment under spec.healthChecks."
            ctx.add("no-health-check", "warning", where, label, msg, fix, [DOCS["flux-wait"], DOCS["flux-health"]],
                    tname)


def _tags(ctx: _Ctx) -> None:
    for tname, u in _units(ctx):
        for o in u.objects:
            for path, image in images_of(o):
                if "${" in image or "@" in image:
                    continue
                last = image.rsplit("/", 1)[-1]
                tag = last.split(":", 1)[1] if ":" in last else ""
                if tag and tag != "latest":
                    continue
                where = _image_where(ctx, u, o, path, image)
                what = "the tag latest" if tag == "latest" else "no tag (which means latest)"
                msg = (f"image {image} uses {what}: the running version is whatever the registry served at pull "
                       "time, git no longer says what is deployed, and reverting a commit does not roll anything back")
                fix = ("Pin a version tag or a digest (image: repo:1.4.2 or repo@sha256:...); to follow new versions, "
                       "let Flux image automation (ImagePolicy) or your CI commit the new tag to git.")
                ctx.add("mutable-image-tag", "warning", where, _label(o, _ns_of(u, o)), msg, fix,
                        [DOCS["k8s-config-images"], DOCS["k8s-images"], DOCS["flux-image-update"]], tname)


def _image_where(ctx: _Ctx, u: Unit, o: dict[str, Any], path: list[Any], image: str) -> tuple[str | None, int | None]:
    srcs = ctx.index.field_sources(o, path, u.closure)
    for d in reversed(srcs):
        if d.get(path) == image:
            return d.file, d.line_of(path)
    repo = image.split(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for c in reversed(u.closure):
        if c.role != "kustomization":
            continue
        for d in ctx.index.by_file.get(c.file) or []:
            for i, entry in enumerate(d.get(["images"]) or []):
                if isinstance(entry, dict) and entry.get("name") and \
                        repo.endswith(str(entry.get("newName") or entry["name"])):
                    return d.file, d.line_of(["images", i])
    return ctx.where(u, o, path)


def _namespaces(ctx: _Ctx) -> None:
    for tname, u in _units(ctx):
        if u.dialect == "argo" and not u.synthesized and (u.spec.get("destination") or {}).get("namespace"):
            continue
        for o in u.objects:
            if _md(o).get("namespace"):
                continue
            if ctx.namespaced(str(o.get("apiVersion") or ""), str(o.get("kind") or "")) is not True:
                continue
            where = ctx.where(u, o, ["metadata"])
            msg = (f"{o.get('kind')} {_md(o).get('name')} has no namespace after the build of {u.ref}: it lands in "
                   "the default namespace, next to whatever else nobody meant to put there, and a second app with "
                   "the same name overwrites it")
            if u.dialect == "argo":
                fix = "Set spec.destination.namespace on the Application, or namespace: in the kustomization."
                docs = [DOCS["kustomize-namespace"], DOCS["k8s-namespaces"]]
            else:
                fix = "Set namespace: in the kustomization.yaml, or spec.targetNamespace on the Flux Kustomization."
                docs = [DOCS["kustomize-namespace"], DOCS["flux-target-ns"]]
            ctx.add("default-namespace", "warning", where, _label(o, "default"), msg, fix, docs, tname)


def _secrets(ctx: _Ctx) -> None:
    """Plaintext secrets in the tree's YAML (as the index read it: bounded, refused files skipped), then history."""
    current: set[tuple[str, str]] = set()
    for file, docs in sorted(ctx.index.by_file.items()):
        if not docs:
            continue
        for d, f in scan_file(file, docs):
            current.add((file, ",".join(f.keys)))
            ctx.add("plaintext-secret", "error", (d.file, d.line_of(f.path)), _doc_label(d),
                    f"{f.detail}: anyone who can read the repository can read the value",
                    _secret_fix(), [DOCS["flux-sops"], DOCS["flux-sealed"], DOCS["argo-secrets"], DOCS["k8s-secrets"]])
    _history_secrets(ctx, current)


def _secret_fix(history: bool = False) -> str:
    how = ("commit secrets encrypted — SOPS (Flux decrypts with spec.decryption) or a SealedSecret — or keep them "
           "outside git with an ExternalSecret")
    if history:
        return ("Rotate the credential now: removing it from the tree does not remove it from history. "
                f"From now on, {how}.")
    return f"Do not commit it in clear: {how}. Rotate the value, since git history keeps the old one."


def _doc_label(d: SourceDoc) -> str:
    if d.kind == "Kustomization":
        return f"{d.file} (secretGenerator)"
    return f"{d.kind}/{d.namespace}/{d.name}" if d.namespace else f"{d.kind}/{d.name}"


#: A commit changing more YAML files than this is read from its export (one batched ``git cat-file``) rather
#: than file by file.
_EXPORT_ABOVE = 16


def _history_secrets(ctx: _Ctx, current: set[tuple[str, str]]) -> None:
    """Secrets in YAML files the last N commits wrote, that the current tree no longer has.

    Each commit's changed files are read from git (``RepoSource.changed_paths`` / ``read_at``, or the commit's
    export when it changed many) and parsed like the tree, with the limits of ``labkit.gitops.yamlbounds`` and one
    ``YamlBudget`` per commit: a file that is not text, an alias bomb or a Latin-1 file in history is skipped, never
    an error — history is evidence, not input.
    """
    if ctx.history is None or not ctx.history.commits or not ctx.source.has_git:
        return
    src = ctx.source
    prefix = src.prefix
    reported: set[tuple[str, str]] = set()
    for sha, _subject in ctx.history.commits:
        if sha == src.revision and not src.dirty:
            continue  # the snapshot is this commit: scanned above
        try:
            changed = src.changed_paths(sha)
        except LabkitError:
            continue
        rels = [(full, full[len(prefix) + 1:] if prefix and full.startswith(prefix + "/") else full)
                for full in changed if full.endswith((".yaml", ".yml"))]
        budget = YamlBudget()
        for rel, text in _texts_at(src, sha, rels):
            try:
                budget.take_file(rel)
                loaded = load_documents(text, rel, budget=budget)
            except (YamlLimitError, yaml.YAMLError):
                continue
            nodes = NodeCache(lambda _f, t=text: t, size=1)
            docs = [SourceDoc(rel, d.index, d.line, d.data, nodes) for d in loaded]
            for doc, f in scan_file(rel, docs):
                key = (rel, ",".join(f.keys))
                if key in current or key in reported:
                    continue
                reported.add(key)
                ctx.add("plaintext-secret", "error", (f"{rel}@{sha[:12]}", doc.line_of(f.path)), _doc_label(doc),
                        f"{f.detail}, in commit {sha[:12]}: it is no longer in the tree, but every clone of the "
                        "repository still has it", _secret_fix(history=True),
                        [DOCS["flux-sops"], DOCS["flux-sealed"], DOCS["argo-secrets"]])


def _texts_at(src: RepoSource, sha: str, rels: list[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    """``(rel, text)`` of the files ``(path from the repository top, rel)`` at ``sha`` that are readable YAML text."""
    root = None
    if len(rels) > _EXPORT_ABOVE:
        try:
            root = src.export(sha)
        except LabkitError:
            return  # refused (recorded in the source's refusals): nothing of this commit is read
    for full, rel in rels:
        try:
            if root is not None:
                text = read_yaml_file(root / rel, rel)
            else:
                data = src.read_at(sha, full)
                if data is None or len(data) > MAX_YAML_BYTES:
                    continue  # deleted by the commit, or too big
                text = decode_yaml_bytes(data, rel)
        except (YamlLimitError, LabkitError, OSError):
            continue
        yield rel, text


def _statefulsets(ctx: _Ctx) -> None:
    if ctx.history is None or not ctx.history.commits:
        return
    for tname, u in _units(ctx):
        current = {(_ns_of(u, o), _md(o).get("name")): o for o in u.objects if o.get("kind") == "StatefulSet"}
        if not current:
            continue
        revs: list[tuple[str, dict[tuple, dict]]] = [(ctx.source.revision, current)]
        for sha, _subject in ctx.history.commits:
            if sha == ctx.source.revision:
                continue
            objs = ctx.history.render(u, sha)
            if objs is None:
                continue
            revs.append((sha, {(_ns_of(u, o), _md(o).get("name")): o for o in objs if o.get("kind") == "StatefulSet"}))
        reported: set[tuple] = set()
        for (new_sha, new), (old_sha, old) in zip(revs, revs[1:]):
            for key, sts in new.items():
                prev = old.get(key)
                if prev is None or key in reported or vct_signature(prev) == vct_signature(sts):
                    continue
                reported.add(key)
                manager = "kustomize-controller" if u.dialect == "flux" else "argocd-controller"
                refusal = short_api_message(forbidden_update(prev, sts, field_manager=manager))
                cur = current.get(key, sts)
                where = ctx.where(u, cur, ["spec", "volumeClaimTemplates"])
                newer = "the working tree" if new_sha == ctx.source.revision and ctx.source.dirty else new_sha[:12]
                msg = (f"spec.volumeClaimTemplates changed between {old_sha[:12]} and {newer}: a cluster running "
                       f"{old_sha[:12]} refuses the sync"
                       + (f" with: {refusal}" if refusal else " (volumeClaimTemplates is immutable)")
                       + " (kustomize-controller #679, flux2 #3573)")
                if u.dialect == "argo":
                    fix = ("volumeClaimTemplates cannot be updated in place. Delete the StatefulSet with "
                           "kubectl delete sts --cascade=orphan (Pods and PVCs stay) and let Argo CD recreate it, "
                           "and resize existing PVCs separately; Replace=true/Force=true recreate it but restart "
                           "its Pods.")
                    docs = [DOCS["k8s-sts-limitations"], DOCS["argo-replace"]]
                else:
                    fix = ("volumeClaimTemplates cannot be updated in place. Delete the StatefulSet with "
                           "kubectl delete sts --cascade=orphan (Pods and PVCs stay) and let Flux recreate it, and "
                           "resize existing PVCs separately; spec.force: true (or the "
                           f"{FLUX_FORCE_ANNOTATION}: Enabled annotation) recreates it but deletes its Pods.")
                    docs = [DOCS["k8s-sts-limitations"], DOCS["flux-force"]]
                ctx.add("statefulset-vct-changed", "error", where, _label(cur, key[0]), msg, fix, docs, tname)


# ---------------------------------------------------------------------------- entry point

_CHECKS = (_hpa_replicas, _statefulsets, _stateful_prune, _jobs, _secrets, _health, _tags, _namespaces)
_SEV_ORDER = {"error": 0, "warning": 1, "info": 2}


def find_pitfalls(source: RepoSource, index: SourceIndex, disc: Discovery, runs: dict[str, Any],
                  history: RevisionRenders | None) -> list[Pitfall]:
    """Run every check (see the module docstring); findings sorted by severity, file and line."""
    from labkit.core.errors import ApiError
    from labkit.sim import SimCluster

    probe = SimCluster(controllers=False)

    def namespaced(av: str, kind: str) -> bool | None:
        try:
            return bool(probe.is_namespaced(av, kind))
        except ApiError:
            return None

    ctx = _Ctx(source, index, disc, runs, history, namespaced, [])
    for check in _CHECKS:
        check(ctx)
    merged: dict[tuple, Pitfall] = {}
    for p in ctx.out:
        key = (p.id, p.file, p.line) if p.file else (p.id, p.object, p.message)
        hit = merged.get(key)
        if hit is None:
            merged[key] = p
        elif p.object not in hit.object.split(", "):
            hit.object = f"{hit.object}, {p.object}"
            if p.target and hit.target and p.target not in hit.target.split(", "):
                hit.target = f"{hit.target}, {p.target}"
    return sorted(merged.values(), key=lambda p: (_SEV_ORDER.get(p.severity, 9), p.id, p.file or "", p.line or 0))
