"""ManifestRepo / WorkingCopy over real git: roundtrips, reproducibility, PRs, reverts, tags, records."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from labkit.core.errors import LabkitError, TemporaryError
from labkit.core.events import EventLog
from labkit.gitops import (
    EPOCH,
    ZERO_SHA,
    ManifestRepo,
    MergeConflict,
    NothingToCommit,
    PushRejected,
    RefNotFound,
    artifact_revision,
    parse_artifact_revision,
    render,
    set_image_in_kustomization,
)

from gitops_support import CLUSTERS, IMAGE

STAGING = "apps/podinfo/staging"
PROD = "apps/podinfo/prod"


def git(repo_dir: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-C", str(repo_dir), *args], check=True, capture_output=True, text=True, env=env).stdout


# ----------------------------------------------------------------------------- basics

def test_epoch_is_the_runs_virtual_time_zero():
    # git commits and the API store's timestamps share one epoch: 2026-01-01T00:00:00Z
    assert dt.datetime.fromtimestamp(EPOCH, tz=dt.timezone.utc) == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_commit_push_clone_roundtrip(repo: ManifestRepo, log: EventLog):
    alice = repo.clone("alice")
    assert alice.read(f"{STAGING}/kustomization.yaml") == (CLUSTERS / STAGING / "kustomization.yaml").read_text()
    alice.write("apps/podinfo/base/notes.md", "hello\n")
    sha = alice.commit("Add notes", author="alice", when=120.0)
    assert repo.head() != sha  # committed locally only
    alice.push(when=125.0)
    assert repo.head() == sha
    assert repo.read("apps/podinfo/base/notes.md") == "hello\n"

    bob = repo.clone("bob")
    assert bob.read("apps/podinfo/base/notes.md") == "hello\n"
    assert bob.head() == sha

    committed = log.filter(component="git", event="Committed")[-1]
    pushed = log.filter(component="git", event="Pushed")[-1]
    assert (committed.revision, committed.time, committed.detail["author"]) == (sha, 120.0, "alice")
    assert (pushed.revision, pushed.time, pushed.detail["ref"]) == (sha, 125.0, "refs/heads/main")
    # the remote is a valid repository
    git(repo.remote_path, "fsck", "--strict", "--no-dangling")


def test_clone_push_rejected_when_behind(repo: ManifestRepo):
    a, b = repo.clone("a"), repo.clone("b")
    a.write("a.txt", "a\n")
    a.commit("a", author="a", when=10)
    a.push()
    b.write("b.txt", "b\n")
    b.commit("b", author="b", when=11)
    with pytest.raises(PushRejected, match="fetch first"):
        b.push()


def test_pull_fast_forwards_a_clone(repo: ManifestRepo):
    wc = repo.clone("ci")
    new = repo.commit({"x.txt": "x\n"}, message="x", author="alice", when=30)
    assert wc.head() != new
    assert wc.pull() == new
    assert wc.read("x.txt") == "x\n"


def test_commit_dates_are_virtual_time(repo: ManifestRepo):
    sha = repo.commit({"a.txt": "1\n"}, message="one", author="alice", when=3600.7)
    at, ct, an, ae = git(repo.remote_path, "show", "-s", "--format=%at %ct %an %ae", sha).split()
    assert int(at) == int(ct) == EPOCH + 3600
    assert (an, ae) == ("alice", "alice@labkit.local")


def test_when_defaults_to_the_event_log_clock(tmp_path: Path):
    now = [42.0]
    log = EventLog(clock=lambda: now[0])
    r = ManifestRepo(tmp_path / "r", log=log)
    sha = r.seed(CLUSTERS, exclude=["README.md"])
    assert int(git(r.remote_path, "show", "-s", "--format=%at", sha)) == EPOCH + 42
    assert log.first(event="Committed").time == 42.0
    r.close()


def _script(root: Path) -> list[str]:
    r = ManifestRepo(root)
    shas = [r.seed(CLUSTERS, author="platform", when=0, exclude=["README.md"])]
    shas.append(r.set_image(STAGING, IMAGE, "6.5.1", author="alice", when=60))
    pr = r.open_pull_request("promote", {f"{PROD}/kustomization.yaml": r.read(f"{STAGING}/kustomization.yaml").replace("staging", "prod")},
                             "alice", when=120, title="Promote 6.5.1")
    shas.append(pr.head)
    shas.append(r.merge(pr, "bob", when=180))
    shas.append(r.revert(shas[1], "carol", when=240))
    shas.append(r.tag("v1.0.0", message="first release", when=300))
    wc = r.clone("dev")
    wc.write("docs/x.md", "x\n")
    shas.append(wc.commit("docs", author="dave", when=360))
    wc.push(when=361)
    r.close()
    return shas


def test_same_inputs_give_the_same_shas(tmp_path: Path):
    first = _script(tmp_path / "one")
    second = _script(tmp_path / "two")
    assert first == second
    assert len(set(first)) == len(first) - 1  # the tag returns the commit it points at


def test_sha_changes_with_time_and_author(tmp_path: Path):
    a = ManifestRepo(tmp_path / "a")
    b = ManifestRepo(tmp_path / "b")
    c = ManifestRepo(tmp_path / "c")
    sa = a.commit({"f": "1\n"}, message="m", author="alice", when=0)
    sb = b.commit({"f": "1\n"}, message="m", author="alice", when=1)
    sc = c.commit({"f": "1\n"}, message="m", author="bob", when=0)
    assert len({sa, sb, sc}) == 3
    for r in (a, b, c):
        r.close()


def test_nothing_to_commit(repo: ManifestRepo):
    with pytest.raises(NothingToCommit):
        repo.commit({f"{STAGING}/namespace.yaml": (CLUSTERS / STAGING / "namespace.yaml").read_text()},
                    message="noop", author="alice", when=1)


def test_invalid_paths_are_rejected(repo: ManifestRepo):
    for bad in ("../outside.yaml", "/etc/passwd", ".git/config"):
        with pytest.raises(LabkitError):
            repo.commit({bad: "x"}, message="bad", author="mallory", when=1)


# ----------------------------------------------------------------------------- pull requests

def test_pull_request_merge_records_the_reviewer(repo: ManifestRepo, log: EventLog):
    base = repo.head()
    pr = repo.open_pull_request("bump", {f"{STAGING}/replicas-patch.yaml": "apiVersion: apps/v1\nkind: Deployment\n"
                                         "metadata:\n  name: podinfo\nspec:\n  replicas: 4\n"},
                                "alice", when=100, title="Scale staging to 4")
    assert repo.head() == base  # nothing on main until merged
    merge = repo.merge(pr, "bob", when=200)

    parents = git(repo.remote_path, "show", "-s", "--format=%P", merge).split()
    assert parents == [base, pr.head]
    author, committer, body = git(repo.remote_path, "show", "-s", "--format=%an%x00%cn%x00%B", merge).split("\x00")
    assert (author, committer) == ("bob", "bob")
    assert body.splitlines()[0] == "Merge pull request #1 from labkit/bump"
    trailers = git(repo.remote_path, "show", "-s", "--format=%(trailers:key=Reviewed-by,valueonly)", merge).strip()
    assert trailers == "bob <bob@labkit.local>"
    assert "replicas: 4" in repo.read(f"{STAGING}/replicas-patch.yaml")

    merged = log.first(event="Merged")
    assert merged.revision == merge
    assert merged.detail["reviewer"] == "bob" and merged.detail["author"] == "alice"
    assert log.first(event="PullRequestOpened").revision == pr.head
    assert pr.state == "merged" and pr.reviewer == "bob" and pr.merge_sha == merge

    with pytest.raises(LabkitError, match="already merged"):
        repo.merge(pr, "carol", when=300)


def test_author_cannot_review_own_pull_request(repo: ManifestRepo):
    pr = repo.open_pull_request("self", {"x.txt": "x\n"}, "alice", when=10)
    with pytest.raises(LabkitError, match="cannot be approved by its author"):
        repo.merge(pr, "alice", when=20)


def test_merge_combines_changes_to_different_lines(repo: ManifestRepo):
    repo.commit({"notes.txt": "1\n2\n3\n4\n5\n6\n7\n8\n"}, message="notes", author="alice", when=1)
    pr = repo.open_pull_request("top", {"notes.txt": "ONE\n2\n3\n4\n5\n6\n7\n8\n"}, "alice", when=2)
    repo.commit({"notes.txt": "1\n2\n3\n4\n5\n6\n7\nEIGHT\n"}, message="bottom", author="bob", when=3)
    repo.merge(pr, "carol", when=4)
    assert repo.read("notes.txt") == "ONE\n2\n3\n4\n5\n6\n7\nEIGHT\n"


def test_a_hung_merge_file_times_out_and_commits_nothing(repo: ManifestRepo, tmp_path, monkeypatch):
    """A git that never finishes ``merge-file`` (a stand-in on PATH) is killed after the timeout."""
    import shutil

    import labkit.gitops.repo as repo_mod

    real_git = shutil.which("git")
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nif [ "$1" = merge-file ]; then exec sleep 30; fi\nexec {real_git} "$@"\n')
    fake.chmod(0o755)
    repo.commit({"notes.txt": "1\n2\n3\n4\n5\n6\n7\n8\n"}, message="notes", author="alice", when=1)
    pr = repo.open_pull_request("top", {"notes.txt": "ONE\n2\n3\n4\n5\n6\n7\n8\n"}, "alice", when=2)
    head = repo.commit({"notes.txt": "1\n2\n3\n4\n5\n6\n7\nEIGHT\n"}, message="bottom", author="bob", when=3)
    monkeypatch.setattr(repo_mod, "MERGE_FILE_TIMEOUT", 0.5)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with pytest.raises(LabkitError, match=r"git merge-file did not finish within 0\.5 s"):
        repo.merge(pr, "carol", when=4)
    assert repo.head() == head
    assert repo.read("notes.txt") == "1\n2\n3\n4\n5\n6\n7\nEIGHT\n"


def test_merge_conflict_names_the_path(repo: ManifestRepo):
    pr = repo.open_pull_request("tag-a", {f"{STAGING}/kustomization.yaml": set_image_in_kustomization(
        repo.read(f"{STAGING}/kustomization.yaml"), IMAGE, "6.6.0")}, "alice", when=1)
    repo.set_image(STAGING, IMAGE, "6.7.0", author="bob", when=2)
    with pytest.raises(MergeConflict) as err:
        repo.merge(pr, "carol", when=3)
    assert err.value.paths == [f"{STAGING}/kustomization.yaml"]
    assert f"Merge conflict in {STAGING}/kustomization.yaml" in str(err.value)


# ----------------------------------------------------------------------------- revert, tags

def test_revert_restores_content(repo: ManifestRepo, log: EventLog):
    original = repo.read(f"{STAGING}/kustomization.yaml")
    bad = repo.set_image(STAGING, IMAGE, "6.5.1-broken", author="alice", when=100)
    repo.commit({"apps/podinfo/base/notes.md": "later\n"}, message="unrelated", author="bob", when=150)
    fix = repo.revert(bad, "oncall", when=200)
    assert repo.read(f"{STAGING}/kustomization.yaml") == original
    assert repo.read("apps/podinfo/base/notes.md") == "later\n"  # later work survives
    msg = git(repo.remote_path, "show", "-s", "--format=%B", fix)
    subject = git(repo.remote_path, "show", "-s", "--format=%s", bad).strip()
    assert msg.splitlines()[0] == f'Revert "{subject}"'
    assert f"This reverts commit {bad}." in msg
    ev = log.first(event="Reverted")
    assert ev.revision == fix and ev.detail["reverted"] == bad
    # git itself agrees the revert is the exact inverse for that file
    assert git(repo.remote_path, "diff", bad + "^", fix, "--", f"{STAGING}/kustomization.yaml") == ""


def test_revert_conflicts_when_the_lines_moved_on(repo: ManifestRepo):
    bad = repo.set_image(STAGING, IMAGE, "6.5.1", author="alice", when=1)
    repo.set_image(STAGING, IMAGE, "6.5.2", author="bob", when=2)
    with pytest.raises(MergeConflict):
        repo.revert(bad, "carol", when=3)


def test_tags_resolve(repo: ManifestRepo, log: EventLog):
    first = repo.head()
    light = repo.tag("seed", when=5)
    second = repo.commit({"x.txt": "x\n"}, message="x", author="alice", when=10)
    annotated = repo.tag("v1.0.0", message="Release 1.0.0", author="release-bot", when=20)
    assert (light, annotated) == (first, second)
    assert repo.resolve("seed") == first
    assert repo.resolve("v1.0.0") == second
    assert repo.tags() == {"seed": first, "v1.0.0": second}
    assert git(repo.remote_path, "cat-file", "-t", "v1.0.0").strip() == "tag"
    assert git(repo.remote_path, "rev-parse", "v1.0.0^{commit}").strip() == second
    assert git(repo.remote_path, "for-each-ref", "--format=%(taggername)", "refs/tags/v1.0.0").strip() == "release-bot"
    assert [e.detail["tag"] for e in log.filter(event="Tagged")] == ["seed", "v1.0.0"]
    with pytest.raises(LabkitError, match="already exists"):
        repo.tag("seed")


def test_resolve_branch_commit_and_abbreviation(repo: ManifestRepo):
    head = repo.head()
    assert repo.resolve("main") == head
    assert repo.resolve(head) == head
    assert repo.resolve(head[:10]) == head
    assert repo.resolve("refs/heads/main") == head
    for bad in ("no-such-branch", "0" * 40, "main~1", ""):
        with pytest.raises(RefNotFound):
            repo.resolve(bad)


def test_artifact_revision_format():
    sha = "450796ddb2ab6724ee1cc32a4be56da032d1cca0"
    assert artifact_revision("main", sha) == f"main@sha1:{sha}"
    assert artifact_revision(None, sha) == f"sha1:{sha}"
    assert parse_artifact_revision(f"main@sha1:{sha}") == ("main", sha)
    assert parse_artifact_revision(f"sha1:{sha}") == (None, sha)


# ----------------------------------------------------------------------------- set image

KUSTOMIZATION_WITH_COMMENTS = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# the environment's namespace
namespace: podinfo-staging
resources:
  - namespace.yaml
  - ../base
images:
  - name: ghcr.io/stefanprodan/podinfo
    newTag: 6.5.0 # promoted by CI
  - name: redis
    newName: registry.local/redis
    newTag: "7.2"
patches:
  - path: replicas-patch.yaml
"""


def test_set_image_edits_only_the_images_entry():
    out = set_image_in_kustomization(KUSTOMIZATION_WITH_COMMENTS, IMAGE, "6.5.1")
    before, after = KUSTOMIZATION_WITH_COMMENTS.splitlines(), out.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [("    newTag: 6.5.0 # promoted by CI", "    newTag: 6.5.1 # promoted by CI")]


def test_set_image_creates_missing_entry_and_list():
    out = set_image_in_kustomization(KUSTOMIZATION_WITH_COMMENTS, "nginx", "1.27")
    assert out.startswith(KUSTOMIZATION_WITH_COMMENTS.split("patches:")[0])
    import yaml

    images = yaml.safe_load(out)["images"]
    assert images[-1] == {"name": "nginx", "newTag": "1.27"}  # quoted: stays a string, not 1.27 float
    assert len(images) == 3

    plain = "resources:\n- deployment.yaml\n"
    out2 = set_image_in_kustomization(plain, IMAGE, "6.5.1")
    assert out2.startswith(plain)
    assert yaml.safe_load(out2) == {"resources": ["deployment.yaml"], "images": [{"name": IMAGE, "newTag": "6.5.1"}]}


def test_set_image_drops_a_digest_and_is_idempotent():
    text = "images:\n- name: app\n  digest: sha256:abc\n"
    out = set_image_in_kustomization(text, "app", "2.0.0")
    import yaml

    assert yaml.safe_load(out) == {"images": [{"name": "app", "newTag": "2.0.0"}]}
    assert set_image_in_kustomization(out, "app", "2.0.0") == out


def test_repo_set_image_commits_and_kustomize_sees_it(repo: ManifestRepo, tmp_path: Path):
    sha = repo.set_image(STAGING, IMAGE, "6.5.1", author="ci-bot", when=50)
    assert repo.set_image(STAGING, IMAGE, "6.5.1", author="ci-bot", when=60) == sha  # no-op: no commit
    changed = git(repo.remote_path, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
    assert changed == [f"{STAGING}/kustomization.yaml"]
    objs = render(STAGING, root=repo.checkout_tree(sha, tmp_path / "out"))
    deploy = next(o for o in objs if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == f"{IMAGE}:6.5.1"


# ----------------------------------------------------------------------------- deploy record

def test_deploy_record_lists_exactly_the_commits_touching_the_path(repo: ManifestRepo):
    seed = repo.head()
    s1 = repo.set_image(STAGING, IMAGE, "6.5.1", author="alice", when=100)
    p1 = repo.set_image(PROD, IMAGE, "6.5.1", author="bob", when=200)
    repo.commit({"apps/podinfo/base/service.yaml": repo.read("apps/podinfo/base/service.yaml") + "# note\n"},
                message="base tweak", author="carol", when=300)
    s2 = repo.set_image(STAGING, IMAGE, "6.5.2", author="alice", when=400)
    pr = repo.open_pull_request("promote-652", {f"{PROD}/kustomization.yaml": set_image_in_kustomization(
        repo.read(f"{PROD}/kustomization.yaml"), IMAGE, "6.5.2")}, "dave", when=500, title="Promote 6.5.2")
    repo.merge(pr, "erin", when=600)

    record = repo.deploy_record(PROD)
    assert [r.sha for r in record] == [pr.head, p1, seed]
    assert [(r.author, r.time) for r in record] == [("dave", 500.0), ("bob", 200.0), ("platform", 0.0)]
    assert record[0].subject == "Promote 6.5.2"
    assert [r.sha for r in repo.deploy_record(f"{STAGING}/kustomization.yaml")] == [s2, s1, seed]
    assert repo.deploy_record("does/not/exist") == []


# ----------------------------------------------------------------------------- fetch, export, pushes

def test_fetch_unavailable_is_a_temporary_error(repo: ManifestRepo):
    assert repo.fetch() == repo.head()
    repo.available = False
    with pytest.raises(TemporaryError) as err:
        repo.fetch()
    assert err.value.reason == "GitOperationFailed"
    wc_error = None
    try:
        repo.clone("late")
    except TemporaryError as exc:
        wc_error = exc
    assert wc_error is not None
    repo.available = True
    assert repo.fetch("main") == repo.head()


def test_fetch_with_the_remote_gone(repo: ManifestRepo):
    wc = repo.clone("dev")
    import shutil

    shutil.rmtree(repo.remote_path)
    with pytest.raises(TemporaryError):
        repo.fetch()
    with pytest.raises(TemporaryError):
        wc.fetch()


def test_checkout_tree_exports_one_revision(repo: ManifestRepo, tmp_path: Path):
    old = repo.head()
    repo.commit({".github/workflows/ci.yaml": "on: push\n", ".sops.yaml": "creation_rules: []\n",
                 f"{STAGING}/extra.yaml": "kind: ConfigMap\n"}, message="later", author="alice", when=10)
    out = repo.checkout_tree(old, tmp_path / "old")
    exported = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = sorted(str(p.relative_to(CLUSTERS)) for p in CLUSTERS.rglob("*")
                      if p.is_file() and p.name != "README.md" and "kind" not in p.relative_to(CLUSTERS).parts)
    assert exported == expected
    new = repo.checkout_tree("main", tmp_path / "new")
    assert (new / STAGING / "extra.yaml").is_file()
    assert not (new / ".github").exists() and not (new / ".sops.yaml").exists()  # source-controller defaults
    raw = repo.checkout_tree("main", tmp_path / "raw", exclude_defaults=False)
    assert (raw / ".sops.yaml").is_file()
    assert repo.export(old) == repo.export(old) == repo.root / "artifacts" / old


def test_symlinks_survive_export(repo: ManifestRepo, tmp_path: Path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    (src / "a" / "link.yaml").symlink_to("cm.yaml")
    r = ManifestRepo(tmp_path / "linkrepo")
    sha = r.seed(src)
    out = r.checkout_tree(sha, tmp_path / "out")
    assert os.readlink(out / "a" / "link.yaml") == "cm.yaml"
    r.close()


def test_on_push_delivers_a_github_shaped_payload(repo: ManifestRepo):
    seen = []
    unsubscribe = repo.on_push(seen.append)
    before = repo.head()
    after = repo.commit({"x.txt": "x\n"}, message="Add x", author="alice", when=90)
    wc = repo.clone("w")
    wc.write("y.txt", "y\n")
    pushed = wc.commit("Add y", author="bob", when=95)
    wc.push(when=96)
    unsubscribe()
    repo.commit({"z.txt": "z\n"}, message="z", author="alice", when=99)
    assert [(e.before, e.after, e.when) for e in seen] == [(before, after, 90.0), (after, pushed, 96.0)]
    p = seen[0].payload
    assert p["ref"] == "refs/heads/main" and p["before"] == before and p["after"] == after
    assert p["repository"]["full_name"] == "labkit/fleet"
    assert p["head_commit"]["message"] == "Add x"
    assert p["head_commit"]["timestamp"] == "2026-01-01T00:01:30Z"
    assert seen[1].pusher == "bob"

    created = []
    repo.on_push(created.append)
    repo.open_pull_request("feature", {"f.txt": "f\n"}, "alice", when=100)
    assert created[0].ref == "refs/heads/feature" and created[0].before == ZERO_SHA


def test_in_process_commits_are_byte_identical_to_git_commit(tmp_path: Path):
    fast = ManifestRepo(tmp_path / "fast")
    slow = ManifestRepo(tmp_path / "slow")
    assert fast.seed(CLUSTERS, when=0, exclude=["README.md"]) == slow.seed(CLUSTERS, when=0, exclude=["README.md"])
    message = "Scale prod\n\n\nTwo blank lines above collapse, trailing spaces go.   \n"
    a = fast.commit({f"{PROD}/replicas-patch.yaml": "spec: {}\n", "docs/new.md": "new\n"},
                    message=message, author="Alice Smith", when=90)
    wc = slow.clone("alice")
    wc.write(f"{PROD}/replicas-patch.yaml", "spec: {}\n")
    wc.write("docs/new.md", "new\n")
    b = wc.commit(message, author="Alice Smith", when=90)
    assert a == b
    info = fast.commit_info(a)
    assert (info.author, info.time, info.message) == ("Alice Smith", 90.0, "Scale prod\n\nTwo blank lines above collapse, trailing spaces go.")
    fast.close()
    slow.close()


def test_git_events_name_the_repository(repo: ManifestRepo, log: EventLog):
    repo.commit({"x.txt": "x\n"}, message="x", author="alice", when=1)
    assert {e.object for e in log.filter(component="git", event=["Committed", "Pushed"])} == {"Repository/fleet"}


def test_set_image_with_flow_style_images_list():
    import yaml

    out = set_image_in_kustomization("resources: [a.yaml]\nimages: []\n", IMAGE, "6.5.1")
    assert yaml.safe_load(out) == {"resources": ["a.yaml"], "images": [{"name": IMAGE, "newTag": "6.5.1"}]}
    assert out.startswith("resources: [a.yaml]\n")
