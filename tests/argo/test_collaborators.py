"""The application controller's collaborators, and a controller wired from them alone (no ArgoSystem).

``ArgoSystem`` is only the assembly: ``AppController`` takes its settings, the
destination registry, the cluster cache, the repo-server, the Application
client and the event log.  These tests build each part by hand and check what
it owns, then run one Application through a controller built without an
``ArgoSystem``.
"""
import pytest
import simpy

from labkit.argo.api import parse_application
from labkit.argo.app_controller import AppController
from labkit.argo.appclient import AppClient
from labkit.argo.cluster_cache import ClusterCache
from labkit.argo.crds import argo_crds
from labkit.argo.destinations import IN_CLUSTER, IN_CLUSTER_SERVER, Destinations
from labkit.argo.repo_server import RepoServer
from labkit.argo.settings import ArgoTimings, Settings
from labkit.argo.tracking import TRACKING_ANNOTATION
from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster
from tests.argo.argo_support import configmap


def _app(server: str = IN_CLUSTER_SERVER, name: str = "") -> dict:
    dest = {"name": name} if name else {"server": server}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "web"},
            "spec": {"project": "default", "source": {"repoURL": "https://git.example/a.git", "path": "web"},
                     "destination": {**dest, "namespace": "default"}}}


def test_destinations_resolve_by_name_or_server_and_refuse_another_clock():
    env = simpy.Environment()
    mgmt, prod = SimCluster(seed=1, env=env), SimCluster(seed=2, env=env)
    d = Destinations(env)
    d.add(IN_CLUSTER, IN_CLUSTER_SERVER, mgmt)
    d.add("prod", "https://prod.example", prod, labels={"env": "prod"})
    assert d.destination(parse_application(_app("https://prod.example/"), "a.yaml")) == ("prod", prod)
    assert d.destination(parse_application(_app(name=IN_CLUSTER), "a.yaml")) == (IN_CLUSTER, mgmt)
    assert d.server_of("prod") == "https://prod.example" and d.server_of("nowhere") == ""
    with pytest.raises(LabkitError) as err:
        d.destination(parse_application(_app(name="staging"), "a.yaml"))
    assert err.value.field == "spec.destination.name"
    with pytest.raises(LabkitError, match="already registered as cluster 'prod'"):
        d.add("other", "https://prod.example", prod)
    with pytest.raises(LabkitError, match="another SimPy environment"):
        d.add("far", "https://far.example", SimCluster(seed=3, env=simpy.Environment()))
    assert [e.name for e in d] == [IN_CLUSTER, "prod"]


def test_cluster_cache_indexes_tracked_objects_and_reports_their_changes():
    env = simpy.Environment()
    cluster = SimCluster(seed=1, env=env)
    d = Destinations(env)
    d.add(IN_CLUSTER, IN_CLUSTER_SERVER, cluster)
    changed: list[str] = []
    cache = ClusterCache(d, changed.append)
    tracked = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "a", "namespace": "default",
                            "annotations": {TRACKING_ANNOTATION: "web:/ConfigMap:default/a"}}}
    cluster.apply(tracked, field_manager="test")  # before the watch: found by the informer's list
    cache.ensure_watches(IN_CLUSTER, [("v1", "ConfigMap")])
    assert cache.tracked(IN_CLUSTER, "web") == [("v1", ("", "ConfigMap", "default", "a"))]
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "default"}},
                  field_manager="test")
    assert changed == []  # an untracked object changes nothing
    cluster.apply(dict(tracked, data={"k": "v"}), field_manager="test")
    assert changed == ["web"]
    get = cache.live_getter(IN_CLUSTER)
    assert get("v1", "ConfigMap", "a", "default")["data"] == {"k": "v"}
    assert "managedFields" not in get("v1", "ConfigMap", "a", "default")["metadata"]
    assert "managedFields" in get("v1", "ConfigMap", "a", "default", managed=True)["metadata"]
    cluster.delete("v1", "ConfigMap", "a", "default")
    assert cache.tracked(IN_CLUSTER, "web") == [] and changed == ["web", "web"]


def test_an_application_controller_runs_from_its_collaborators_alone(tmp_path):
    env = simpy.Environment()
    log = EventLog(lambda: env.now)
    mgmt = SimCluster(seed=1, env=env, log=log, controllers=False)
    repo = ManifestRepo(tmp_path / "repo", log=log, name="apps")
    repo.commit({"web/cm.yaml": configmap("web-config", {"a": "1"})}, message="web", author="a", when=0)
    for crd in argo_crds():
        mgmt.apply(crd, field_manager="test")
    mgmt.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}, field_manager="test")
    app = _app()
    app["metadata"]["namespace"] = "argocd"
    app["spec"]["source"] = {"repoURL": repo.url, "path": "web", "targetRevision": "HEAD"}
    app["spec"]["syncPolicy"] = {"automated": {}}
    mgmt.apply(app, field_manager="test")

    settings = Settings(mgmt, log, namespace="argocd", seed=1, timings=ArgoTimings.fixed(),
                        engine_timings=EngineTimings(api_call=0.0), automated_retry_limit=5)
    destinations = Destinations(env)
    destinations.add(IN_CLUSTER, IN_CLUSTER_SERVER, mgmt)
    controllers: dict[str, AppController] = {}
    cache = ClusterCache(destinations, lambda name: controllers[name].on_resource_event())
    repo_server = RepoServer()
    repo_server.add(repo.url, repo)
    gone: list[str] = []
    ctrl = AppController(env, "argocd", "web", client=AppClient(mgmt), settings=settings, destinations=destinations,
                         cache=cache, repo_server=repo_server, log=log, on_gone=lambda c: gone.append(c.name))
    controllers["web"] = ctrl
    env.run(until=5)
    status = mgmt.get("argoproj.io/v1alpha1", "Application", "web", "argocd")["status"]
    assert status["sync"]["status"] == "Synced" and status["operationState"]["phase"] == "Succeeded"
    assert mgmt.get("v1", "ConfigMap", "web-config", "default")["data"] == {"a": "1"}
    mgmt.delete("argoproj.io/v1alpha1", "Application", "web", "argocd")
    ctrl.request_refresh(3)
    env.run(until=6)
    assert gone == ["web"] and ctrl.gone
    assert [e.event for e in log.filter(component="argocd-application-controller")][-1] == "ApplicationDeleted"
