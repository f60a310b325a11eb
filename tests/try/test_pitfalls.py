"""One fixture repository per pitfall: the exact finding, at the right file and line, and its absence when fixed."""
from __future__ import annotations

import pytest

from labkit.tryrepo.discovery import argo_available

from .conftest import pitfalls
from .repos import deployment, dedent, flux_ks, git_repo, kustomization, line, namespace, write

HPA = """
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata:
      name: web
    spec:
      scaleTargetRef:
        apiVersion: apps/v1
        kind: Deployment
        name: web
      minReplicas: 2
      maxReplicas: 10
"""
PATCH = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 4
"""


def _hpa_repo(root, ks_extra=""):
    prod_k = kustomization("web-prod", "namespace.yaml", "../base") + "    patches:\n      - path: replicas.yaml\n"
    return write(root, {
        "apps/web/base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - hpa.yaml\n",
        "apps/web/base/deployment.yaml": deployment("web", replicas=1),
        "apps/web/base/hpa.yaml": HPA,
        "apps/web/prod/kustomization.yaml": prod_k,
        "apps/web/prod/namespace.yaml": namespace("web-prod"),
        "apps/web/prod/replicas.yaml": PATCH,
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/web/prod", extra=ks_extra),
    })


def test_hpa_replicas_points_at_the_overlay_patch_that_wins(tmp_path, tryit):
    res = tryit(_hpa_repo(tmp_path / "repo"), history=0)
    [p] = pitfalls(res, "hpa-replicas")
    assert (p.file, p.line) == ("apps/web/prod/replicas.yaml", line(PATCH, "replicas:"))
    assert p.object == "Deployment/web-prod/web"
    assert p.severity == "warning"
    assert "replicas: 4" in p.message and "HorizontalPodAutoscaler web" in p.message
    assert "spec.ignore" in p.fix and any("fluxcd.io" in d for d in p.docs)


def test_hpa_replicas_is_not_reported_when_flux_ignores_the_field(tmp_path, tryit):
    extra = ("\n      ignore:\n        - paths: [\"/spec/replicas\"]\n          target:\n"
             "            kind: Deployment\n            name: web")
    res = tryit(_hpa_repo(tmp_path / "repo", ks_extra=extra), history=0)
    assert pitfalls(res, "hpa-replicas") == []


STS_V1 = """
    apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: pg
    spec:
      serviceName: pg
      replicas: 1
      selector:
        matchLabels:
          app: pg
      template:
        metadata:
          labels:
            app: pg
        spec:
          containers:
            - name: pg
              image: postgres:16.4
      volumeClaimTemplates:
        - metadata:
            name: data
          spec:
            accessModes: [ReadWriteOnce]
            resources:
              requests:
                storage: 1Gi
"""


def test_statefulset_volume_claim_template_change_in_history(tmp_path, tryit):
    root = tmp_path / "repo"
    files = {"db/kustomization.yaml": kustomization("data", "namespace.yaml", "statefulset.yaml"),
             "db/namespace.yaml": namespace("data"), "db/statefulset.yaml": STS_V1}
    old, new = git_repo(root, [("pg 1Gi", files),
                               ("pg 5Gi", {"db/statefulset.yaml": STS_V1.replace("1Gi", "5Gi")})])
    res = tryit(root, history=5)
    [p] = pitfalls(res, "statefulset-vct-changed")
    assert (p.file, p.line) == ("db/statefulset.yaml", line(STS_V1, "volumeClaimTemplates:"))
    assert p.object == "StatefulSet/data/pg"
    assert p.severity == "error"
    assert old[:12] in p.message and new[:12] in p.message
    # the API server's own refusal, from the simulator's admission
    assert 'StatefulSet.apps "pg" is invalid: spec: Forbidden: updates to statefulset spec for fields other than' \
        in p.message
    assert [h["sha"] for h in res.report.history] == [new, old]


def test_unchanged_statefulset_history_is_clean_and_history_can_be_disabled(tmp_path, tryit):
    root = tmp_path / "repo"
    files = {"db/kustomization.yaml": kustomization("data", "namespace.yaml", "statefulset.yaml"),
             "db/namespace.yaml": namespace("data"), "db/statefulset.yaml": STS_V1}
    git_repo(root, [("pg", files), ("more replicas", {"db/statefulset.yaml": STS_V1.replace("replicas: 1",
                                                                                           "replicas: 2")})])
    assert pitfalls(tryit(root, history=5), "statefulset-vct-changed") == []
    git_repo_changed = tmp_path / "repo2"
    git_repo(git_repo_changed, [("pg", files), ("5Gi", {"db/statefulset.yaml": STS_V1.replace("1Gi", "5Gi")})])
    assert pitfalls(tryit(git_repo_changed, history=0), "statefulset-vct-changed") == []


CNPG = """
    apiVersion: postgresql.cnpg.io/v1
    kind: Cluster
    metadata:
      name: {name}{ann}
    spec:
      instances: 3
      storage:
        size: 10Gi
"""


def test_stateful_operator_resource_under_prune_without_safeguard(tmp_path, tryit):
    safe_ann = "\n      annotations:\n        kustomize.toolkit.fluxcd.io/prune: disabled"
    db = CNPG.format(name="orders-db", ann="")
    root = write(tmp_path / "repo", {
        "apps/db/kustomization.yaml": kustomization("db", "namespace.yaml", "orders.yaml", "billing.yaml"),
        "apps/db/namespace.yaml": namespace("db"),
        "apps/db/orders.yaml": db,
        "apps/db/billing.yaml": CNPG.format(name="billing-db", ann=safe_ann),
        "clusters/prod/db.yaml": flux_ks("db", "./apps/db"),
    })
    res = tryit(root, history=0)
    [p] = pitfalls(res, "stateful-cr-prune")
    assert (p.file, p.line, p.object) == ("apps/db/orders.yaml", line(db, "metadata:"), "Cluster/db/orders-db")
    assert p.severity == "error" and "kustomize.toolkit.fluxcd.io/prune: disabled" in p.fix
    # the CRD is not in the repository: assumed installed, and the resources were created
    [t] = res.report.targets
    assert t.assumed_crds == ["clusters.postgresql.cnpg.io"]
    outcomes = {o.key: o.outcome for o in res.report.objects}
    assert outcomes["Cluster/db/orders-db"] == "created"


JOB = """
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: {name}{ann}
    spec:{backoff}
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: main
              image: ghcr.io/acme/tools:2.0.1
              args: [{args}]
"""


def _job(name, args='"report"', backoff=None, ann=""):
    b = f"\n      backoffLimit: {backoff}" if backoff is not None else ""
    return JOB.format(name=name, args=args, backoff=b, ann=ann)


def test_plain_job_is_reported_with_the_immutable_template_refusal(tmp_path, tryit):
    job = _job("nightly-report", backoff=2)
    forced = _job("forced-report", ann="\n      annotations:\n        kustomize.toolkit.fluxcd.io/force: Enabled")
    root = write(tmp_path / "repo", {
        "apps/jobs/kustomization.yaml": kustomization("jobs", "namespace.yaml", "job.yaml", "forced.yaml"),
        "apps/jobs/namespace.yaml": namespace("jobs"),
        "apps/jobs/job.yaml": job, "apps/jobs/forced.yaml": forced,
        "clusters/prod/jobs.yaml": flux_ks("jobs", "./apps/jobs"),
    })
    res = tryit(root, history=0)
    [p] = pitfalls(res, "job-not-hook")
    assert (p.file, p.line, p.object) == ("apps/jobs/job.yaml", line(job, "template:"), "Job/jobs/nightly-report")
    assert 'Job.batch "nightly-report" is invalid: spec.template: Invalid value:' in p.message
    assert "field is immutable" in p.message
    assert "force" in p.fix and "https://fluxcd.io/flux/use-cases/running-jobs/" in p.docs
    # the Job itself ran to completion in the simulator
    assert {o.key: o.outcome for o in res.report.objects}["Job/jobs/nightly-report"] == "healthy"


def test_migration_job_without_backoff_limit_zero(tmp_path, tryit):
    bad = _job("db-migrate", args='"migrate"')
    good = _job("schema-migration", args='"migrate"', backoff=0)
    flyway = _job("schema", args='"info"', backoff=3).replace("ghcr.io/acme/tools:2.0.1", "flyway/flyway:10.17")
    root = write(tmp_path / "repo", {
        "apps/db/kustomization.yaml": kustomization("db", "namespace.yaml", "a.yaml", "b.yaml", "c.yaml"),
        "apps/db/namespace.yaml": namespace("db"),
        "apps/db/a.yaml": bad, "apps/db/b.yaml": good, "apps/db/c.yaml": flyway,
    })
    res = tryit(root, history=0)
    found = {(p.file, p.line, p.object) for p in pitfalls(res, "migration-backoff")}
    assert found == {("apps/db/a.yaml", line(bad, "spec:"), "Job/db/db-migrate"),
                     ("apps/db/c.yaml", line(flyway, "backoffLimit:"), "Job/db/schema")}


SECRET = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: db-creds
      namespace: app
    type: Opaque
    data:
      username: YWRtaW4=
      password: aHVudGVyMg==
"""
SOPS_SECRET = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: api-token
      namespace: app
    stringData:
      token: ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]
    sops:
      version: 3.9.0
      mac: ENC[AES256_GCM,data:mac,iv:x,tag:y,type:str]
"""


def test_plaintext_secret_in_tree_and_history(tmp_path, tryit):
    root = tmp_path / "repo"
    old_secret = SECRET.replace("db-creds", "legacy-creds")
    files = {"app/kustomization.yaml": kustomization("app", "namespace.yaml", "configmap.yaml"),
             "app/namespace.yaml": namespace("app"),
             "app/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  LOG: info\n",
             "app/legacy.yaml": old_secret}
    first, _ = git_repo(root, [("with legacy secret", files),
                               ("drop it", {"app/legacy.yaml": None, "app/secret.yaml": SECRET,
                                            "app/sops.yaml": SOPS_SECRET})])
    res = tryit(root, history=5)
    found = {(p.file, p.line, p.object) for p in pitfalls(res, "plaintext-secret")}
    assert found == {("app/secret.yaml", line(SECRET, "username:"), "Secret/app/db-creds"),
                     (f"app/legacy.yaml@{first[:12]}", line(old_secret, "username:"), "Secret/app/legacy-creds")}
    hist = next(p for p in pitfalls(res, "plaintext-secret") if "@" in p.file)
    assert "Rotate" in hist.fix and first[:12] in hist.message
    # values are never printed
    assert all("aHVudGVyMg" not in p.message and "hunter2" not in p.message for p in res.report.pitfalls)


def test_no_health_check_and_what_the_run_observed(tmp_path, tryit):
    ks = flux_ks("apps", "./apps/web", wait=False)
    root = write(tmp_path / "repo", {
        "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "deployment.yaml"),
        "apps/web/namespace.yaml": namespace("web"),
        "apps/web/deployment.yaml": deployment("web", image="ghcr.io/acme/web:1.4.2"),
        "clusters/prod/apps.yaml": ks,
    })
    res = tryit(root, history=0, missing_images=["ghcr.io/acme/web:1.4.2"])
    [p] = pitfalls(res, "no-health-check")
    assert (p.file, p.line, p.object) == ("clusters/prod/apps.yaml", line(ks, "spec:"), "Deployment/web/web")
    [unit] = res.report.units
    assert unit.status == "Ready"  # no health check: Ready although the rollout cannot succeed
    dep = next(o for o in res.report.objects if o.key == "Deployment/web/web")
    assert dep.outcome == "failed" and "ImagePullBackOff" in dep.message
    assert "in this run Kustomization/flux-system/apps was Ready" in p.message


def test_wait_true_turns_the_missing_image_into_a_failed_health_check(tmp_path, tryit):
    root = write(tmp_path / "repo", {
        "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "deployment.yaml"),
        "apps/web/namespace.yaml": namespace("web"),
        "apps/web/deployment.yaml": deployment("web", image="ghcr.io/acme/web:1.4.2"),
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/web", wait=True),
    })
    res = tryit(root, history=0, missing_images=["ghcr.io/acme/web:1.4.2"])
    assert pitfalls(res, "no-health-check") == []
    [unit] = res.report.units
    assert (unit.status, unit.reason) == ("Failed", "HealthCheckFailed")
    assert "timeout waiting for: [Deployment/web/web status: 'InProgress']" in unit.message


def test_mutable_image_tags_point_at_the_image_line_or_the_images_entry(tmp_path, tryit):
    latest = deployment("api", image="ghcr.io/acme/api:latest")
    untagged = deployment("worker", image="redis")
    kust = kustomization("app", "namespace.yaml", "api.yaml", "worker.yaml", "cron.yaml") + \
        "    images:\n      - name: ghcr.io/acme/cron\n        newTag: latest\n"
    cron = deployment("cron", image="ghcr.io/acme/cron:1.0.0")
    root = write(tmp_path / "repo", {"app/kustomization.yaml": kust, "app/namespace.yaml": namespace("app"),
                                     "app/api.yaml": latest, "app/worker.yaml": untagged, "app/cron.yaml": cron})
    res = tryit(root, history=0)
    found = {(p.file, p.line, p.object) for p in pitfalls(res, "mutable-image-tag")}
    assert found == {("app/api.yaml", line(latest, "image:"), "Deployment/app/api"),
                     ("app/worker.yaml", line(untagged, "image:"), "Deployment/app/worker"),
                     ("app/kustomization.yaml", line(kust, "- name: ghcr.io/acme/cron"), "Deployment/app/cron")}


def test_objects_without_namespace_land_in_default(tmp_path, tryit):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  A: b\n"
    root = write(tmp_path / "repo", {"app/kustomization.yaml": "resources:\n  - cm.yaml\n  - ns.yaml\n",
                                     "app/cm.yaml": cm, "app/ns.yaml": namespace("other")})
    res = tryit(root, history=0)
    [p] = pitfalls(res, "default-namespace")
    assert (p.file, p.line, p.object) == ("app/cm.yaml", line(cm, "metadata:"), "ConfigMap/default/settings")
    assert "namespace:" in p.fix
    assert {o.key: o.outcome for o in res.report.objects}["ConfigMap/default/settings"] == "created"


def test_clean_repository_has_no_pitfalls(tmp_path, tryit):
    root = tmp_path / "repo"
    git_repo(root, [("app", {
        "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "deployment.yaml"),
        "apps/web/namespace.yaml": namespace("web"),
        "apps/web/deployment.yaml": deployment("web"),
        "clusters/prod/flux-system/kustomization.yaml": "resources:\n  - gotk-sync.yaml\n",
        "clusters/prod/flux-system/gotk-sync.yaml": dedent("""
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: flux-system
              namespace: flux-system
            spec:
              interval: 1m0s
              ref:
                branch: main
              url: https://github.com/acme/fleet
            """) + "---\n" + dedent(flux_ks("flux-system", "./clusters/prod", wait=False)),
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/web"),
    })])
    res = tryit(root, history=5)
    assert res.report.pitfalls == []
    assert {u.name: u.status for u in res.report.units} == {"flux-system": "Ready", "apps": "Ready"}
    assert all(o.outcome in ("healthy", "created") for o in res.report.objects)
    assert res.report.summary()["pitfalls"] == 0


@pytest.mark.skipif(not argo_available(), reason="labkit.argo not importable")
def test_argo_hook_job_is_fine_and_a_plain_job_gets_the_argo_fix(tmp_path, tryit):
    hook = _job("db-migrate", args='"migrate"', backoff=0,
                ann="\n      annotations:\n        argocd.argoproj.io/hook: PreSync")
    plain = _job("reindex", backoff=1)
    app = """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: web
          namespace: argocd
        spec:
          project: default
          source:
            repoURL: https://github.com/acme/apps.git
            path: apps/web
            targetRevision: main
          destination:
            server: https://kubernetes.default.svc
            namespace: web
          syncPolicy:
            automated: {prune: true}
            syncOptions: [CreateNamespace=true]
    """
    root = write(tmp_path / "repo", {"apps/web/hook.yaml": hook, "apps/web/plain.yaml": plain,
                                     "apps/web/deploy.yaml": deployment("web"), "argocd/web.yaml": app})
    res = tryit(root, history=0)
    [p] = pitfalls(res, "job-not-hook")
    assert (p.file, p.object) == ("apps/web/plain.yaml", "Job/web/reindex")
    assert "argocd.argoproj.io/hook" in p.fix and any("argo-cd.readthedocs.io" in d for d in p.docs)


def test_credential_literals_and_secret_generators(tmp_path, tryit):
    from labkit.tryrepo.secrets import guard_available

    dep = deployment("api") + dedent("""
              env:
                - name: LOG_LEVEL
                  value: info
                - name: DB_PASSWORD
                  value: hunter2hunter2
    """).replace("\n", "\n" + " " * 10).rstrip() + "\n"
    kust = kustomization("app", "namespace.yaml", "api.yaml") + (
        "    secretGenerator:\n      - name: api-keys\n        literals:\n"
        "          - STRIPE_KEY=sk_live_not_a_real_key\n")
    root = write(tmp_path / "repo", {"app/kustomization.yaml": kust, "app/namespace.yaml": namespace("app"),
                                     "app/api.yaml": dep})
    res = tryit(root, history=0)
    found = {(p.file, p.line) for p in pitfalls(res, "plaintext-secret")}
    assert ("app/kustomization.yaml", line(kust, "literals:")) in found
    if guard_available():  # labkit.secrets.guard points at the value itself
        assert ("app/api.yaml", line(dep, "value: hunter2hunter2")) in found
    else:
        assert ("app/api.yaml", line(dep, "- name: DB_PASSWORD")) in found
    assert len(found) == 2
    assert all("hunter2" not in p.message and "sk_live" not in p.message for p in res.report.pitfalls)
