"""ApplicationSets: list, cluster, git-directory and matrix generators; applicationsSync policies; errors."""
import pytest
from tests.argo.argo_support import Lab, configmap

from labkit.argo import ArgoTimings
from labkit.core.errors import LabkitError

CLUSTERS = {"staging": {"server": "https://staging.example", "labels": {"env": "staging"}},
            "prod": {"server": "https://prod.example", "labels": {"env": "prod"}}}


def appset(lab, name, generators, template_name, path, server="{{server}}", policy=None, go=False, extra=""):
    sync = f"  syncPolicy:\n    applicationsSync: {policy}\n" if policy else ""
    gotmpl = "  goTemplate: true\n  goTemplateOptions: [\"missingkey=error\"]\n" if go else ""
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: {name}\n  namespace: argocd\n"
            f"spec:\n{gotmpl}  generators:\n{generators}{sync}  template:\n    metadata:\n      name: '{template_name}'\n"
            f"{extra}    spec:\n      project: default\n      source:\n        repoURL: {lab.url}\n"
            f"        targetRevision: HEAD\n        path: '{path}'\n      destination:\n        server: '{server}'\n"
            f"        namespace: default\n      syncPolicy:\n        automated: {{}}\n")


def _apps(lab):
    return sorted(a["metadata"]["name"] for a in lab.mgmt.list("argoproj.io/v1alpha1", "Application", "argocd"))


def test_list_generator(lab):
    lab.commit({"apps/web/c.yaml": configmap("web"), "apps/api/c.yaml": configmap("api")}, when=0)
    gens = ("  - list:\n      elements:\n      - app: web\n        team: a\n      - app: api\n        team: b\n")
    lab.argo.apply(appset(lab, "svc", gens, "{{app}}-{{team}}", "apps/{{app}}", server="https://kubernetes.default.svc"),
                   file="svc.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == ["api-b", "web-a"]
    assert lab.mgmt.get("v1", "ConfigMap", "web", "default") is not None
    app = lab.argo.app("web-a")
    ref = app["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("ApplicationSet", "svc", True)
    conds = {c["type"]: c["status"] for c in lab.mgmt.get("argoproj.io/v1alpha1", "ApplicationSet", "svc",
                                                          "argocd")["status"]["conditions"]}
    assert conds["ErrorOccurred"] == "False" and conds["ResourcesUpToDate"] == "True"


def test_cluster_generator_selects_by_label_and_targets_each_cluster(tmp_path):
    lab = Lab(tmp_path, extra_clusters=CLUSTERS)
    lab.commit({"apps/web/c.yaml": configmap("web")}, when=0)
    gens = "  - clusters: {}\n"
    lab.argo.apply(appset(lab, "all", gens, "web-{{name}}", "apps/web"), file="all.yaml")
    gens = "  - clusters:\n      selector:\n        matchLabels:\n          env: prod\n"
    lab.argo.apply(appset(lab, "prod-only", gens, "prodweb-{{name}}", "apps/web"), file="prod.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == ["prodweb-prod", "web-in-cluster", "web-prod", "web-staging"]
    assert lab.argo.app("web-prod")["spec"]["destination"]["server"] == "https://prod.example"
    for name in ("staging", "prod"):
        assert lab.clusters[name].get("v1", "ConfigMap", "web", "default") is not None
    # a new cluster with matching labels is picked up
    from labkit.sim import SimCluster

    extra = SimCluster(seed=1, name="prod2", env=lab.env, log=lab.log, controllers=False)
    lab.argo.add_cluster("prod2", "https://prod2.example", extra, labels={"env": "prod"})
    lab.env.run(until=20)
    assert "prodweb-prod2" in _apps(lab)
    assert extra.get("v1", "ConfigMap", "web", "default") is not None


def test_git_directories_with_exclude_and_requeue_every_180_seconds(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(git=0.5))
    lab.commit({"apps/web/c.yaml": configmap("web"), "apps/api/c.yaml": configmap("api"),
                "apps/legacy/c.yaml": configmap("legacy"), "apps/.hidden/c.yaml": configmap("hidden"),
                "other/x/c.yaml": configmap("x")}, when=0)
    gens = ("  - git:\n      repoURL: " + lab.url + "\n      revision: HEAD\n      directories:\n"
            "      - path: 'apps/legacy'\n        exclude: true\n      - path: 'apps/*'\n")
    lab.argo.apply(appset(lab, "dirs", gens, "{{path.basename}}", "{{path}}",
                          server="https://kubernetes.default.svc"), file="dirs.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == ["api", "web"]  # exclude wins whatever the order; hidden directories are not listed
    assert lab.argo.app("web")["spec"]["source"]["path"] == "apps/web"
    lab.commit({"apps/new/c.yaml": configmap("new")}, when=10)
    lab.env.run(until=180.5)
    assert "new" not in _apps(lab)
    lab.env.run(until=185)
    assert "new" in _apps(lab)
    created = [e.time for e in lab.events("argocd-applicationset-controller", "ApplicationCreated",
                                          "Application/argocd/new")]
    # the first reconcile ended at 0.5 (ls-remote); requeued 180 s later; ls-remote 0.5 s again
    assert created == [181.0]


def test_webhook_regenerates_git_applicationset_at_once(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(webhook=1.0))
    lab.commit({"apps/web/c.yaml": configmap("web")}, when=0)
    lab.argo.enable_webhook(lab.repo)
    gens = "  - git:\n      repoURL: " + lab.url + "\n      revision: HEAD\n      directories:\n      - path: 'apps/*'\n"
    lab.argo.apply(appset(lab, "dirs", gens, "{{path.basename}}", "{{path}}",
                          server="https://kubernetes.default.svc"), file="dirs.yaml")
    lab.env.run(until=10)
    lab.commit({"apps/api/c.yaml": configmap("api")}, when=10)
    lab.env.run(until=12)
    assert _apps(lab) == ["api", "web"]


def test_matrix_of_git_directories_and_clusters_with_go_template(tmp_path):
    lab = Lab(tmp_path, extra_clusters=CLUSTERS)
    lab.commit({"apps/web/c.yaml": configmap("web"), "apps/api/c.yaml": configmap("api")}, when=0)
    gens = ("  - matrix:\n      generators:\n      - git:\n          repoURL: " + lab.url + "\n"
            "          revision: HEAD\n          directories:\n          - path: 'apps/*'\n"
            "      - clusters:\n          selector:\n            matchLabels:\n              env: prod\n")
    lab.argo.apply(appset(lab, "m", gens, "{{.path.basename}}-{{.name}}", "{{.path.path}}", server="{{.server}}",
                          go=True), file="m.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == ["api-prod", "web-prod"]
    assert lab.clusters["prod"].get("v1", "ConfigMap", "api", "default") is not None
    assert lab.clusters["staging"].get("v1", "ConfigMap", "api", "default") is None


@pytest.mark.parametrize("policy, updated, deleted", [
    ("sync", True, True), ("create-update", True, False), ("create-delete", False, True),
    ("create-only", False, False)])
def test_applications_sync_policies(lab, policy, updated, deleted):
    lab.commit({"apps/web/c.yaml": configmap("web"), "apps/api/c.yaml": configmap("api")}, when=0)
    gens = "  - list:\n      elements:\n      - app: web\n      - app: api\n"
    lab.argo.apply(appset(lab, "svc", gens, "{{app}}", "apps/{{app}}", server="https://kubernetes.default.svc",
                          policy=policy), file="svc.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == ["api", "web"]
    # the template changes (a new label) and one element goes away
    gens = "  - list:\n      elements:\n      - app: web\n"
    extra = "      labels:\n        tier: frontend\n"
    lab.argo.apply(appset(lab, "svc", gens, "{{app}}", "apps/{{app}}", server="https://kubernetes.default.svc",
                          policy=policy, extra=extra), file="svc.yaml")
    lab.env.run(until=20)
    labels = lab.argo.app("web")["metadata"].get("labels") or {}
    assert (labels.get("tier") == "frontend") is updated
    assert ("api" not in _apps(lab)) is deleted


def test_template_error_sets_a_condition_and_applies_nothing(lab):
    lab.commit({"apps/web/c.yaml": configmap("web")}, when=0)
    gens = "  - git:\n      repoURL: " + lab.url + "\n      revision: HEAD\n      directories:\n      - path: 'apps/*'\n"
    lab.argo.apply(appset(lab, "bad", gens, "{{.path.basenam}}", "{{.path.path}}",
                          server="https://kubernetes.default.svc", go=True), file="bad.yaml")
    lab.env.run(until=10)
    assert _apps(lab) == []
    st = lab.mgmt.get("argoproj.io/v1alpha1", "ApplicationSet", "bad", "argocd")["status"]
    err = next(c for c in st["conditions"] if c["type"] == "ErrorOccurred")
    assert err["status"] == "True"
    assert err["message"] == ('ApplicationSet/argocd/bad: spec.template.metadata.name: template: :1:2: executing "" '
                              'at <.path.basenam>: map has no entry for key "basenam"')


def test_invalid_generated_name_applies_nothing(lab):
    lab.commit({"apps/web/c.yaml": configmap("web")}, when=0)
    gens = "  - list:\n      elements:\n      - app: web\n      - app: Bad_Name\n"
    # a list generator's parameters are known at apply time: the template is rendered then, naming the file
    with pytest.raises(LabkitError) as err:
        lab.argo.apply(appset(lab, "svc", gens, "{{app}}", "apps/web", server="https://kubernetes.default.svc"),
                       file="svc.yaml")
    msg = str(err.value)
    assert msg.startswith("svc.yaml: spec.template.metadata.name: ") and '"Bad_Name"' in msg
    lab.env.run(until=10)
    assert _apps(lab) == [] and lab.mgmt.list("argoproj.io/v1alpha1", "ApplicationSet", "argocd") == []


def test_malformed_applicationset_is_refused_before_anything_is_applied(lab):
    gens = "  - list:\n      elements:\n      - app: web\n"
    bad = appset(lab, "svc", gens, "{{app}}", "apps/web", policy="create-everything")
    with pytest.raises(LabkitError) as err:
        lab.argo.apply(bad, file="appsets/svc.yaml")
    assert str(err.value).startswith("appsets/svc.yaml: spec.syncPolicy.applicationsSync: unsupported value")
    assert lab.mgmt.list("argoproj.io/v1alpha1", "ApplicationSet", "argocd") == []


def test_deleting_the_applicationset_deletes_its_applications(lab):
    lab.commit({"apps/web/c.yaml": configmap("web")}, when=0)
    gens = "  - list:\n      elements:\n      - app: web\n"
    lab.argo.apply(appset(lab, "svc", gens, "{{app}}", "apps/{{app}}", server="https://kubernetes.default.svc"),
                   file="svc.yaml")
    lab.env.run(until=10)
    lab.mgmt.delete("argoproj.io/v1alpha1", "ApplicationSet", "svc", "argocd")
    lab.env.run(until=20)
    assert _apps(lab) == []
