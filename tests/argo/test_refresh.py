"""When Argo CD notices a commit: the 120 s resync (+ jitter), or at once on a webhook."""
from tests.argo.argo_support import Lab, configmap

from labkit.argo import ArgoTimings


def _refreshes(lab, level=None):
    return [e.time for e in lab.events(event="Refreshed") if level is None or e.detail["level"] == level]


def _sync_starts(lab):
    return [e.time for e in lab.events(event="OperationStarted")]


def test_resync_every_120_seconds_finds_a_new_commit(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(git=0.5))
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "1"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "2"})}, when=10)
    lab.env.run(until=300)
    # resync at 120 (ls-remote 0.5 s) finds the commit; the auto-sync's own ls-remote is skipped (SHA known)
    assert _sync_starts(lab) == [0.5, 120.5]
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"]["v"] == "2"
    resync = [e.detail["started"] for e in lab.events(event="Refreshed") if e.detail["started"] in (120.0, 240.0)]
    assert resync == [120.0, 240.0]


def test_webhook_refreshes_at_once(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(git=0.5, webhook=1.5))
    lab.argo.enable_webhook(lab.repo, secret="s3cret")
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "1"})}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "2"})}, when=10)
    lab.env.run(until=60)
    # delivered 1.5 s after the push, verified, refresh: ls-remote 0.5 s -> sync at 12.0
    assert _sync_starts(lab)[-1] == 12.0
    received = lab.events(component="argocd-server", event="WebhookReceived")
    assert [e.time for e in received][-1] == 11.5
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"]["v"] == "2"


def test_webhook_for_another_branch_does_not_refresh(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(webhook=1.0))
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "1"})}, when=0)
    lab.argo.enable_webhook(lab.repo)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    lab.env.run(until=10)
    lab.repo.commit({"app/c.yaml": configmap("cfg", {"v": "feature"})}, message="wip", author="bob", when=10,
                    branch="feature")
    lab.env.run(until=100)
    assert lab.events(component="argocd-server", event="WebhookRefresh") == []
    assert lab.mgmt.get("v1", "ConfigMap", "cfg", "default")["data"]["v"] == "1"


def test_resync_is_skipped_while_the_last_comparison_has_not_expired(tmp_path):
    lab = Lab(tmp_path, timings=ArgoTimings.fixed(webhook=1.0))
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "1"})}, when=0)
    lab.argo.enable_webhook(lab.repo)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=100)
    lab.commit({"app/c.yaml": configmap("cfg", {"v": "2"})}, when=100)  # webhook refresh at 101
    lab.env.run(until=400)
    starts = sorted({e.detail["started"] for e in lab.events(event="Refreshed")})
    # 0 (created), 101 (webhook); the resync at 120 finds 101 + 120 > 120 and skips; 240 and 360 compare
    assert starts == [0.0, 101.0, 240.0, 360.0]


def test_resync_jitter_is_seeded(tmp_path):
    def starts(seed, sub):
        lab = Lab(tmp_path / sub, seed=seed, timings=ArgoTimings.fixed(jitter=60.0))
        lab.commit({"a/c.yaml": configmap("a"), "b/c.yaml": configmap("b")}, when=0)
        lab.argo.apply(lab.app_yaml("a", "a"), file="a.yaml")
        lab.argo.apply(lab.app_yaml("b", "b"), file="b.yaml")
        lab.env.run(until=200)
        return {e.object: e.detail["started"] for e in lab.events(event="Refreshed") if e.detail["started"] > 0}

    one, again, other = starts(7, "x"), starts(7, "y"), starts(8, "z")
    assert one == again
    assert one != other
    for t in one.values():
        assert 120.0 <= t < 180.0
    assert len(set(one.values())) == 2


def test_hard_refresh_annotation_regenerates_manifests(lab):
    lab.commit({"app/c.yaml": configmap("cfg")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=10)
    generated = lab.argo.repo_server.generated
    lab.mgmt.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": "web", "namespace": "argocd",
                                 "annotations": {"argocd.argoproj.io/refresh": "hard"}}},
                   field_manager="argocd-cli", force=True)
    lab.env.run(until=20)
    assert lab.argo.repo_server.generated == generated + 1
    ann = lab.argo.app("web")["metadata"].get("annotations") or {}
    assert "argocd.argoproj.io/refresh" not in ann  # handled and removed by the controller


def test_a_refresh_waiting_on_git_does_not_overwrite_a_finished_operation(tmp_path):
    from tests.argo.argo_support import deployment, job

    lab = Lab(tmp_path, timings=ArgoTimings.fixed(git=1.0))
    lab.commit({"app/m.yaml": job("migrate", hook="PreSync"), "app/d.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app", auto=True), file="web.yaml")
    # ls-remote 1 s -> sync starts at 1; the hook runs 1..11; the Sync wave at 11 ends the operation
    lab.env.run(until=10.5)
    lab.argo.refresh("web")  # this refresh waits on git until 11.5, across the end of the operation
    lab.env.run(until=11.6)
    op = lab.argo.status("web")["operationState"]
    assert (op["phase"], op["finishedAt"]) == ("Succeeded", "2026-01-01T00:00:11Z")
