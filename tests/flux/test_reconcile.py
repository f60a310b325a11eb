"""The Flux dialect end to end: GitRepository + Kustomization over real git and kustomize into the simulator.

Timings are fixed (git fetch 1 s, build 0.5 s, webhook delivery 1 s, API calls 0 s,
no interval jitter) so the expected times below follow from Flux's rules:
source interval 1m, Kustomization interval 10m, dependency re-check 30 s.
"""
from tests.flux.conftest import cm

FILES = {"apps/a.yaml": cm("a", greeting="hi"), "apps/b.yaml": cm("b", x="1")}


def api_writes_to(lab, names):
    return [e for e in lab.log.filter(component="api", event=["Created", "Updated", "Deleted"])
            if e.object in names]


def test_first_reconcile_times_and_status(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    # source fetched at 1.0 (fetch 1 s); the Kustomization, woken by the new artifact, builds 0.5 s
    assert lab.events("NewArtifact", "source-controller")[0].time == 1.0
    ok = lab.events("ReconciliationSucceeded")[0]
    assert ok.time == 1.5
    rev = f"main@sha1:{lab.repo.head()}"
    assert ok.revision == rev
    st = lab.ks()["status"]
    assert st["lastAppliedRevision"] == rev == st["lastAttemptedRevision"]
    assert lab.ready() | {} and lab.ready()["reason"] == "ReconciliationSucceeded"
    assert lab.ready()["message"] == f"Applied revision: {rev}"
    assert [e["id"] for e in st["inventory"]["entries"]] == ["default_a__ConfigMap", "default_b__ConfigMap"]
    a = lab.cluster.get("v1", "ConfigMap", "a", "default")
    assert a["metadata"]["labels"] == {"kustomize.toolkit.fluxcd.io/name": "apps",
                                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}


def test_noop_reconcile_makes_zero_writes(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    before = len(api_writes_to(lab, {"ConfigMap/default/a", "ConfigMap/default/b"}))
    lab.run(1.5 + 600 + 5)  # the next run starts 10m after the first finished (1.5) and builds for 0.5 s
    assert lab.events("ReconciliationSucceeded")[-1].time == 602.0
    assert len(api_writes_to(lab, {"ConfigMap/default/a", "ConfigMap/default/b"})) == before


def test_poll_picks_up_a_commit_on_the_source_interval(make_lab):
    lab = make_lab(FILES)
    lab.source(interval="1m")
    lab.kustomization()
    lab.run(10)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="change", author="alice", when=10)
    lab.run(100)
    # source runs at 0 (+1 s fetch) then every 60 s after finishing: fetches complete at 1, 62, ...
    fetches = [e.time for e in lab.events("NewArtifact", "source-controller")]
    assert fetches == [1.0, 62.0]
    assert lab.events("ReconciliationSucceeded")[-1].time == 62.5
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hello"


def test_webhook_delivers_commit_without_waiting_for_poll(make_lab):
    lab = make_lab(FILES)
    lab.source(interval="10m")
    lab.kustomization()
    lab.flux.enable_webhook(lab.repo, token="s3cret")
    lab.run(10)
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="hello")}, message="change", author="alice", when=10)
    lab.run(30)
    # commit at 10 -> delivery 1 s -> receiver annotates -> fetch 1 s -> build 0.5 s
    assert [e.time for e in lab.log.filter(component="webhook", event="WebhookReceived")] == [11.0]
    assert lab.events("ReconciliationSucceeded")[-1].time == 12.5
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hello"


def test_prune_deletes_objects_removed_from_git(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization()
    lab.run(5)
    lab.repo.commit({"apps/b.yaml": None}, message="drop b", author="alice", when=5)
    lab.run(70)
    assert lab.cluster.get("v1", "ConfigMap", "b", "default") is None
    assert [e["id"] for e in lab.ks()["status"]["inventory"]["entries"]] == ["default_a__ConfigMap"]


def test_prune_false_keeps_objects(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(prune=False)
    lab.run(5)
    lab.repo.commit({"apps/b.yaml": None}, message="drop b", author="alice", when=5)
    lab.run(70)
    assert lab.cluster.get("v1", "ConfigMap", "b", "default") is not None


def test_depends_on_waits_for_dependency(make_lab):
    lab = make_lab({"infra/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
                    "apps/a.yaml": cm("a", ns="team", x="1")})
    lab.source()
    lab.kustomization(name="apps", path="./apps", dependsOn=[{"name": "infra"}])
    lab.kustomization(name="infra", path="./infra")
    lab.run(40)
    dep = lab.events("DependencyNotReady", obj="Kustomization/flux-system/apps")
    assert dep[0].detail["message"] == "dependency 'flux-system/infra' is not ready"
    infra_ok = lab.events("ReconciliationSucceeded", obj="Kustomization/flux-system/infra")[0].time
    apps_ok = lab.events("ReconciliationSucceeded", obj="Kustomization/flux-system/apps")[0].time
    assert infra_ok == 1.5
    # apps was first woken by the artifact at 1.0 while infra was building: not ready, re-check after 30 s
    assert apps_ok == 1.0 + 30 + 0.5
    assert lab.cluster.get("v1", "ConfigMap", "a", "team") is not None


def test_postbuild_defaults_and_strict_missing_variable(make_lab):
    files = {"apps/a.yaml": cm("a", greeting="${greeting:=hello}", region="${region}")}
    lab = make_lab(files)
    lab.source()
    lab.kustomization(postBuild={"substitute": {"region": "eu-west-1"}})
    lab.run(5)
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"] == {"greeting": "hello", "region": "eu-west-1"}


def test_postbuild_strict_missing_variable_fails_build_and_applies_nothing(make_lab):
    lab = make_lab({"apps/a.yaml": cm("a", region="${region}"), "apps/b.yaml": cm("b", x="1")})
    lab.source()
    lab.kustomization(postBuild={"substitute": {"other": "x"}})
    lab.run(5)
    ready = lab.ready()
    assert ready["status"] == "False" and ready["reason"] == "BuildFailed"
    assert 'variable not set (strict mode): "region"' in ready["message"]
    assert lab.cluster.get("v1", "ConfigMap", "b", "default") is None


def test_kustomize_error_is_build_failed_naming_the_file(make_lab):
    lab = make_lab({"apps/kustomization.yaml": "resources:\n- missing.yaml\n", "apps/b.yaml": cm("b", x="1")})
    lab.source()
    lab.kustomization()
    lab.run(5)
    ready = lab.ready()
    assert ready["reason"] == "BuildFailed"
    assert "missing.yaml" in ready["message"]
    assert lab.cluster.get("v1", "ConfigMap", "b", "default") is None


def test_malformed_yaml_is_build_failed(make_lab):
    lab = make_lab({"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n", "apps/b.yaml": cm("b", x="1")})
    lab.source()
    lab.kustomization()
    lab.run(5)
    assert lab.ready()["reason"] == "BuildFailed"
    assert "a.yaml" in lab.ready()["message"]
    assert lab.cluster.get("v1", "ConfigMap", "b", "default") is None


def test_failure_retries_on_retry_interval_and_keeps_last_good_revision(make_lab):
    lab = make_lab(FILES)
    lab.source(interval="1m")
    lab.kustomization(interval="10m", retryInterval="2m")
    lab.run(5)
    good = lab.ks()["status"]["lastAppliedRevision"]
    lab.repo.commit({"apps/kustomization.yaml": "resources:\n- nope.yaml\n"}, message="break", author="bob", when=5)
    lab.run(62.5 + 1)
    fails = lab.events("ReconciliationFailed")
    assert [e.time for e in fails] == [62.5]
    lab.run(62.5 + 120 + 1)
    assert [e.time for e in lab.events("ReconciliationFailed")] == [62.5, 183.0]
    st = lab.ks()["status"]
    assert st["lastAppliedRevision"] == good and st["lastAttemptedRevision"] != good
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hi"


def test_suspend_stops_reconciliation(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(suspend=True)
    lab.run(100)
    assert lab.events("ReconciliationSucceeded") == []
    assert lab.cluster.get("v1", "ConfigMap", "a", "default") is None
    assert lab.events("Suspended")


def test_drift_is_reverted_at_the_next_interval(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(interval="5m")
    lab.run(10)
    lab.cluster.kubectl_edit("v1", "ConfigMap", "a", "default", lambda o: o["data"].update(greeting="hotfix"))
    lab.run(300)
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hotfix"
    lab.run(303)  # next run starts at 1.5 + 300 = 301.5, applies after the 0.5 s build
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hi"
    applied = lab.events("Applied")[-1]
    assert applied.time == 302.0 and applied.detail["changeset"] == "ConfigMap/default/a configured"


def test_requested_at_annotation_reconciles_at_once(make_lab):
    lab = make_lab(FILES)
    lab.source()
    lab.kustomization(interval="1h")
    lab.run(10)
    lab.cluster.kubectl_edit("v1", "ConfigMap", "a", "default", lambda o: o["data"].update(greeting="hotfix"))
    lab.run(20)
    lab.flux.request_reconcile("Kustomization", "apps")
    lab.run(21)
    assert lab.events("ReconciliationSucceeded")[-1].time == 20.5
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hi"
    assert lab.ks()["status"]["lastHandledReconcileAt"].startswith("2026-01-01T00:00:20Z")


def test_git_outage_keeps_serving_and_converges_after(make_lab):
    lab = make_lab(FILES)
    lab.source(interval="1m")
    lab.kustomization()
    lab.run(5)
    lab.repo.available = False
    lab.repo.commit({"apps/a.yaml": cm("a", greeting="new")}, message="c", author="a", when=5)
    lab.run(130)
    failed = lab.events("GitOperationFailed", "source-controller")
    assert [e.time for e in failed] == [62.0, 123.0]
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "hi"
    lab.repo.available = True
    lab.run(200)
    assert lab.cluster.get("v1", "ConfigMap", "a", "default")["data"]["greeting"] == "new"


JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: default
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: m
        image: migrate:{tag}
"""


def test_force_recreates_an_object_blocked_by_an_immutable_field(make_lab):
    lab = make_lab({"apps/job.yaml": JOB.format(tag="1")})
    lab.source()
    lab.kustomization(force=True)
    lab.run(5)
    uid = lab.cluster.get("batch/v1", "Job", "migrate", "default")["metadata"]["uid"]
    lab.repo.commit({"apps/job.yaml": JOB.format(tag="2")}, message="v2", author="a", when=5)
    lab.run(70)
    job = lab.cluster.get("batch/v1", "Job", "migrate", "default")
    assert job["metadata"]["uid"] != uid
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"
    assert lab.ready()["reason"] == "ReconciliationSucceeded"


def test_immutable_field_without_force_fails_with_api_message(make_lab):
    lab = make_lab({"apps/job.yaml": JOB.format(tag="1")})
    lab.source()
    lab.kustomization()
    lab.run(5)
    lab.repo.commit({"apps/job.yaml": JOB.format(tag="2")}, message="v2", author="a", when=5)
    lab.run(70)
    ready = lab.ready()
    assert ready["reason"] == "ReconciliationFailed"
    assert ready["message"].startswith('Job/default/migrate dry-run failed (Invalid): Job.batch "migrate" is invalid: spec.template')
    assert ready["message"].endswith("field is immutable")


def test_wait_skips_the_kustomization_itself(make_lab):
    """A Kustomization that renders itself with wait: true must not health-check itself (Flux guards the deadlock)."""
    self_ks = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: fleet}
  path: ./apps
  prune: true
  wait: true
"""
    lab = make_lab({"apps/a.yaml": cm("a", x="1"), "apps/self.yaml": self_ks})
    lab.source()
    lab.kustomization(wait=True)
    lab.run(30)
    assert lab.ready()["reason"] == "ReconciliationSucceeded"
