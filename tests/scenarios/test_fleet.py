"""Fleet: the git-directories ApplicationSet follows the tree; repository structure decides the cost of a change."""
import pytest

from labkit.core.errors import LabkitError
from labkit.scenarios import fleet

N = 24


@pytest.fixture(scope="module")
def result():
    return fleet.run_fleet(seed=5, services=N, model_services=6, teams=3)


def test_every_directory_becomes_a_synced_healthy_application(result):
    m = result.metrics()
    assert m["services"] == N and m["applications"] == N
    assert m["objects"] == 3 * N  # Deployment + Service + ConfigMap each
    assert m["reconcile_all_wall_s"] > 0 and m["reconcile_all_virtual_s"] > 0
    lab = result.lab
    # pods really run: the workload controllers were on
    pods = [p for p in lab.cluster.list("v1", "Pod", fleet.FLEET_NS)
            if (p.get("status") or {}).get("phase") == "Running"]
    assert len(pods) == N  # N services, one added, one removed
    app = lab.argo.app(fleet.service_name(1))
    assert app["spec"]["source"]["path"] == f"services/{fleet.service_name(1)}"
    assert app["status"]["sourceType"] == "Directory"
    assert app["metadata"]["ownerReferences"][0]["kind"] == "ApplicationSet"


def test_adding_a_directory_adds_an_application_within_the_webhook(result):
    new = fleet.service_name(N)
    lab = result.lab
    assert lab.argo.app(new) is not None
    # the webhook made the ApplicationSet re-read the generator at once, not at its 180 s requeue
    created = lab.events(component="argocd-applicationset-controller", event="ApplicationCreated",
                         object=f"Application/argocd/{new}")
    assert len(created) == 1 and created[0].time - result.marks["added"] <= 5.0
    assert 0 < result.metrics()["new_app_after_s"] <= 60.0


def test_removing_a_directory_prunes_the_application_and_its_objects(result):
    gone = fleet.service_name(0)
    lab = result.lab
    assert lab.argo.app(gone) is None
    for kind, av in (("Deployment", "apps/v1"), ("Service", "v1"), ("ConfigMap", "v1")):
        assert lab.get(av, kind, gone, fleet.FLEET_NS) is None
    deleted = lab.events(component="api", event="Deleted", object=f"Deployment/{fleet.FLEET_NS}/{gone}")
    assert deleted and deleted[0].time > result.marks["removed"]
    assert result.metrics()["removed_app_after_s"] > 0


def test_without_a_webhook_the_generator_waits_for_its_requeue():
    r = fleet.run_fleet(seed=5, services=4, webhook=False, workload_controllers=False, models=False)
    new = fleet.service_name(4)
    created = r.lab.events(component="argocd-applicationset-controller", event="ApplicationCreated",
                           object=f"Application/argocd/{new}")[0].time
    reconciles = [e.time for e in r.lab.events(component="argocd-applicationset-controller", event="Reconciled")]
    # the Application appeared at a periodic re-read: 180 s after a previous generator run
    assert any(abs((created - t) - 180.0) < 1.0 for t in reconciles if t < created)
    assert created - r.marks["added"] > 5.0


def test_repository_models_differ_in_files_commits_and_reconcile_work(result):
    df = result.models.set_index("model")
    assert list(df.index) == list(fleet.MODELS)
    s, teams = 6, 3
    # promoting one service is one file and one commit in every layout
    assert set(df.files_per_promotion) == {1} and set(df.commits_per_promotion) == {1}
    # a change to every prod service: one file per service, except the overlay's one patch
    assert df.loc["monorepo-overlays", "files_per_fleet_change"] == 1
    for model in ("app-of-apps", "per-team-repos", "applicationset"):
        assert df.loc[model, "files_per_fleet_change"] == s
    # ... and one commit per repository
    assert df.loc["per-team-repos", "commits_per_fleet_change"] == teams
    assert df.loc["per-team-repos", "repositories"] == teams
    # a commit refreshes the Applications that follow its repository: per-team repos touch only one team's
    assert df.loc["per-team-repos", "refreshes_per_commit"] < df.loc["applicationset", "refreshes_per_commit"]
    assert df.loc["app-of-apps", "refreshes_per_commit"] > df.loc["applicationset", "refreshes_per_commit"]
    # syncing an Application applies all its objects: the one-app-per-environment monorepo re-applies all of prod
    assert df.loc["monorepo-overlays", "objects_applied_per_commit"] == 3 * s
    for model in ("app-of-apps", "per-team-repos", "applicationset"):
        assert df.loc[model, "objects_applied_per_commit"] == 3
    m = result.metrics()
    assert m["models"] == list(fleet.MODELS) and len(m["objects_compared_per_commit"]) == 4


def test_kustomize_sources_render_with_kustomize():
    r = fleet.run_fleet(seed=5, services=3, source_type="kustomize", workload_controllers=False, models=False)
    app = r.lab.argo.app(fleet.service_name(1))
    assert app["status"]["sourceType"] == "Kustomize"
    assert r.metrics()["applications"] == 3


def test_bad_parameters_name_their_field():
    with pytest.raises(LabkitError) as err:
        fleet.run_fleet(services=0)
    assert err.value.field == "services"
    with pytest.raises(LabkitError) as err:
        fleet.run_fleet(source_type="helm")
    assert err.value.field == "source_type"
