"""Blast radius of a leaked CI credential, counted on one simulated organisation."""
from labkit.delivery import blast
from labkit.sim import SimCluster


def org_cluster(services: int = 3):
    org = blast.build_organisation(services)
    cluster = SimCluster(seed=0, controllers=False)
    blast.load(cluster, org)
    return org, cluster


def test_push_deployer_bound_cluster_wide():
    org, cluster = org_cluster(3)
    e = blast.cluster_exposure(cluster, blast.deployer_access("cluster"))
    # per service: Deployment, Service, ConfigMap, Secret, ServiceAccount, HPA = 6 (its Namespace is not in the
    # edit rules) -> 18; platform: 11 controller Deployments + 11 ServiceAccounts + the flux-system Secret +
    # the coredns ConfigMap = 24
    assert e.objects == 18 + 24
    assert e.by_kind == {"Deployment": 3 + 11, "Service": 3, "ConfigMap": 3 + 1, "Secret": 3 + 1,
                         "ServiceAccount": 3 + 11, "HorizontalPodAutoscaler": 3}
    assert e.namespaces == 3 + 4  # the services' and the four platform namespaces
    assert not e.reviewed and not e.in_git_log


def test_push_deployer_bound_per_namespace():
    org, cluster = org_cluster(3)
    e = blast.cluster_exposure(cluster, blast.deployer_access("namespaces", org.services))
    assert e.objects == 18 and e.namespaces == 3


def test_pull_with_branch_protection_exposes_nothing():
    org, cluster = org_cluster(3)
    e = blast.git_exposure(cluster, org, blast.GitAccess(branch_protection=True))
    assert e.objects == 0 and e.reviewed and e.in_git_log


def test_pull_without_protection_or_with_bypass_exposes_what_flux_reconciles():
    org, cluster = org_cluster(3)
    for access in (blast.GitAccess(branch_protection=False), blast.GitAccess(branch_protection=True, bypass=True)):
        e = blast.git_exposure(cluster, org, access)
        # every object of the configuration repository: 7 per service, Namespace included
        assert e.objects == 21
        assert not e.reviewed and e.in_git_log


def test_image_channel_and_measure():
    b = blast.measure(3)
    assert b.push.objects == 42 and b.pull.objects == 0
    assert b.pull_image_channel.objects == 3  # one automated Deployment per service
    built_in = {n["metadata"]["name"] for n in SimCluster(seed=0, controllers=False).list("v1", "Namespace")}
    assert "kube-system" in built_in  # one of the four platform namespaces exists from the start
    # services (7 objects each), platform objects, the three new platform namespaces, the built-in namespaces
    assert b.total_objects == 3 * 7 + 24 + 3 + len(built_in)
    assert [v["objects_exposed_without_review"] for v in b.variants] == [0, 21, 21]
    no_registry = blast.measure(3, git=blast.GitAccess(registry_push=False))
    assert no_registry.pull_image_channel.objects == 0


def test_rbac_rules():
    rule = blast.Rule(("get", "patch"), ("apps",), ("deployments",))
    assert rule.allows("patch", "apps", "deployments")
    assert not rule.allows("delete", "apps", "deployments")
    assert blast.Rule(("*",), ("*",), ("*",)).allows("delete", "", "secrets")
    binding = blast.Binding((rule,), ("a",))
    assert binding.allows("patch", "apps", "deployments", "a")
    assert not binding.allows("patch", "apps", "deployments", "b")
    assert not binding.allows("patch", "apps", "deployments", None)
