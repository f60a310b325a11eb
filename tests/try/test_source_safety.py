"""Untrusted repositories for ``labkit try``'s source (issue 15, classes 1 and 3): git runs nothing from the
repository and touches neither its index nor its work tree, hostile git trees are refused as ``git fsck``
refuses them, the snapshot holds nothing that leads outside it, and it is removed on SIGTERM too.

Every hostile repository is built at test time under ``tmp_path``; programs the repository names (hooks,
fsmonitor, textconv, external diff, pager, gpg, filters, credential helpers) are scripts that create a marker
file, and each test asserts that no marker exists, that the repository (``.git`` included: ``.git/index`` and
every working-tree file, bytes and mtime) is unchanged, that an ``outside`` directory next to it is unchanged,
and that the private temp directory is empty once the run is closed.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from labkit.core.errors import LabkitError
from labkit.tryrepo import source as source_mod
from labkit.tryrepo import TryOptions, try_repo

from .repos import GIT_ENV, deployment, flux_ks, git, git_repo, kustomization, namespace, write

ROOT = Path(__file__).resolve().parents[2]
SECRET = "TOP-SECRET-OUTSIDE-THE-REPOSITORY"

# ------------------------------------------------------------------------------------------------- helpers


def app_files() -> dict[str, str]:
    return {
        "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "deployment.yaml"),
        "apps/web/namespace.yaml": namespace("web"),
        "apps/web/deployment.yaml": deployment("web"),
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/web"),
    }


def make_outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "secret.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  k: {SECRET}\n")
    (out / "dir" / "kustomization.yaml").write_text("resources: [../secret.yaml]\n")
    return out


def fingerprint(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Every entry below ``root`` (``.git`` included): type, mode, size, mtime, and bytes or link target."""
    out: dict[bytes, tuple[Any, ...]] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        st = os.lstat(dirpath)
        out[dirpath] = (st.st_mode, st.st_mtime_ns)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            content: Any = None
            if stat.S_ISREG(st.st_mode):
                content = Path(os.fsdecode(full)).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(full)
            out[full] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def script(tmp_path: Path, name: str) -> str:
    """An executable that creates ``markers/<name>`` when anything runs it."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch '{markers / name}'\ncat >/dev/null 2>&1 </dev/null\nexit 1\n")
    path.chmod(0o755)
    return str(path)


def markers(tmp_path: Path) -> list[str]:
    d = tmp_path / "markers"
    return sorted(os.listdir(d)) if d.is_dir() else []


def hash_object(repo: Path, kind: str, body: bytes) -> str:
    """Write an object git would refuse to build (``--literally``: no fsck checks)."""
    return subprocess.run(["git", "hash-object", "-w", "--literally", "-t", kind, "--stdin"], cwd=repo, env=GIT_ENV,
                          input=body, capture_output=True, check=True).stdout.decode().strip()


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree object from ``(mode, name, sha)`` rows, exactly as given (duplicates, '..', '/' and all)."""
    body = b"".join(mode.encode() + b" " + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    return hash_object(repo, "tree", body)


def blob(repo: Path, data: bytes) -> str:
    return hash_object(repo, "blob", data)


def tree_of(repo: Path, rev: str) -> list[tuple[str, bytes, str]]:
    """The rows of ``rev``'s root tree, to build hostile trees on top of a working one."""
    out = subprocess.run(["git", "ls-tree", "-z", rev], cwd=repo, env=GIT_ENV, capture_output=True,
                         check=True).stdout
    rows = []
    for item in out.split(b"\0"):
        if item:
            meta, name = item.split(b"\t", 1)
            mode, _kind, sha = meta.decode().split()
            rows.append((mode, name, sha))
    return rows


def commit_tree(repo: Path, tree: str, message: str, parent: str | None = None, branch: str | None = None) -> str:
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    sha = git(repo, *args)
    if branch:
        git(repo, "update-ref", f"refs/heads/{branch}", sha)
    return sha


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """``tempfile`` writes into a private directory, which must be empty again after each run."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield d
    left = [n for n in os.listdir(d) if n.startswith("labkit-try-") or n.startswith("tmp")]
    assert left == [], "the snapshot (or a git scratch file) was left behind"


@pytest.fixture
def run(private_tmp):
    """``try_repo`` in-process; the result is closed afterwards (the snapshot must then be gone)."""
    results = []

    def go(target: Path, **options: Any):
        options.setdefault("history", 0)
        res = try_repo(str(target), TryOptions(**options))
        results.append(res)
        return res

    yield go
    for r in results:
        r.close()


def refused(result: Any) -> dict[str, str]:
    return dict(result.source.refused)


def assert_confined(result: Any) -> None:
    """Every symlink of the snapshot resolves inside it, and nothing from outside reached the report."""
    root = os.path.realpath(result.source.root)
    for dirpath, dirnames, filenames in os.walk(result.source.root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            assert stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode), full
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(full)
                assert real == root or real.startswith(root + os.sep), (full, real)
    assert SECRET not in result.report.to_json()


def labkit_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("labkit")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "labkit"]
    return subprocess.run([*argv, "try", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env=env)


# ------------------------------------------------------------------------------- 1. git without side effects


def hostile_git_repo(tmp_path: Path) -> Path:
    """A committed repository whose .git names a program (a marker script) at every place git looks for one."""
    repo = tmp_path / "repo"
    files = {**app_files(), ".gitattributes": "*.yaml diff=evil filter=evil\n",
             "apps/web/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  p: hunter2\n"}
    git_repo(repo, [("one", files), ("two", {"apps/web/secret.yaml": None})])
    head = git(repo, "rev-parse", "HEAD")
    tree = raw_tree(repo, tree_of(repo, "HEAD") + [("100644", b"signed.txt", blob(repo, b"signed\n"))])
    who = "alice <alice@example.com> 1700000000 +0000"
    signed = (f"tree {tree}\nparent {head}\nauthor {who}\ncommitter {who}\n"  # so log.showSignature runs gpg
              "gpgsig -----BEGIN PGP SIGNATURE-----\n \n xx\n -----END PGP SIGNATURE-----\n\nsigned\n")
    git(repo, "reset", "-q", "--hard", hash_object(repo, "commit", signed.encode()))
    cfg = {
        "core.fsmonitor": script(tmp_path, "fsmonitor"),
        "core.hooksPath": str(tmp_path / "hooks"),
        "core.pager": script(tmp_path, "pager"),
        "core.sshCommand": script(tmp_path, "ssh"),
        "core.askPass": script(tmp_path, "askpass"),
        "core.untrackedCache": "true",
        "diff.external": script(tmp_path, "external-diff"),
        "diff.evil.textconv": script(tmp_path, "textconv"),
        "diff.evil.command": script(tmp_path, "diff-driver"),
        "filter.evil.clean": script(tmp_path, "clean-filter"),
        "filter.evil.smudge": script(tmp_path, "smudge-filter"),
        "filter.evil.process": script(tmp_path, "process-filter"),
        "credential.helper": "!" + script(tmp_path, "credential"),
        "log.showSignature": "true",
        "gpg.program": script(tmp_path, "gpg"),
        "pager.log": script(tmp_path, "pager-log"),
        "pager.show": script(tmp_path, "pager-show"),
        "remote.origin.url": "https://github.com/acme/fleet",
        "remote.origin.uploadpack": script(tmp_path, "upload-pack"),
    }
    for key, value in cfg.items():
        git(repo, "config", key, value)
    for hooks in (repo / ".git" / "hooks", tmp_path / "hooks"):
        hooks.mkdir(exist_ok=True)
        for hook in ("post-index-change", "pre-commit", "post-checkout", "reference-transaction", "pre-auto-gc",
                     "post-rewrite", "fsmonitor-watchman", "post-merge", "pre-push"):
            (hooks / hook).write_text(f"#!/bin/sh\ntouch '{tmp_path / 'markers'}/hook-{hook}'\n")
            (hooks / hook).chmod(0o755)
    assert markers(tmp_path) == []
    return repo


@pytest.mark.parametrize("change", ["clean", "modified", "untracked"])
def test_no_program_named_by_the_repository_runs_and_index_and_tree_are_untouched(tmp_path, run, change):
    repo = hostile_git_repo(tmp_path)
    if change == "modified":
        (repo / "apps/web/deployment.yaml").write_text(deployment("web", replicas=5).replace("\n    ", "\n"))
    elif change == "untracked":
        (repo / "apps/web/new.yaml").write_text("# new\n")
    index = (repo / ".git" / "index").read_bytes()
    before = fingerprint(repo)
    res = run(repo, history=5)
    assert markers(tmp_path) == []
    assert (repo / ".git" / "index").read_bytes() == index
    assert fingerprint(repo) == before
    assert res.source.dirty == (change != "clean")
    assert [h["subject"] for h in res.report.history][:3] == ["signed", "two", "one"]
    # the secret deleted by commit "two" was found through git, with no textconv or pager in between
    assert any(p.id == "plaintext-secret" and "no longer in the tree" in p.message for p in res.report.pitfalls)


def test_ref_export_and_history_run_nothing_either(tmp_path, run):
    repo = hostile_git_repo(tmp_path)
    before = fingerprint(repo)
    res = run(repo, ref="main~1", history=5)
    assert markers(tmp_path) == [] and fingerprint(repo) == before
    assert (res.source.label, res.source.dirty) == ("main~1", False)


def test_the_callers_git_environment_does_not_redirect_git(tmp_path, run, monkeypatch):
    repo = tmp_path / "repo"
    [sha] = git_repo(repo, [("one", app_files())])
    other = tmp_path / "other"
    git_repo(other, [("other", {"x.yaml": "a: 1\n"})])
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor'='{script(tmp_path, 'env-fsmonitor')}'")
    res = run(repo)
    assert (res.source.revision, res.source.label, res.source.dirty) == (sha, "main", False)
    assert markers(tmp_path) == []


def test_a_ref_that_starts_with_a_dash_is_refused_before_git_sees_it(tmp_path, run):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    for ref in ("--output=" + str(tmp_path / "written"), "-n1", "--upload-pack=touch x"):
        with pytest.raises(LabkitError) as err:
            run(repo, ref=ref)
        assert err.value.field == "--ref" and "starts with '-'" in str(err.value)
    assert not (tmp_path / "written").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to hand the repository "
                    "to another user")
def test_a_repository_of_another_user_gets_the_safe_directory_advice(tmp_path, run, monkeypatch):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    subprocess.run(["chown", "-R", "65534:65534", str(repo)], check=True)
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    with pytest.raises(LabkitError) as err:
        run(repo)
    assert "dubious ownership" in str(err.value)
    assert f"git config --global --add safe.directory {repo}" in str(err.value)
    proc = labkit_cli(str(repo), "--json", env={**os.environ, "GIT_CONFIG_GLOBAL": str(empty)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("labkit: error: ") and "safe.directory" in proc.stderr


# ----------------------------------------------------------------- the dirty check (no git status, no index)


def test_dirty_is_decided_by_blob_hashes_and_ignored_files_do_not_count(tmp_path, run):
    repo = tmp_path / "repo"
    [sha] = git_repo(repo, [("one", {**app_files(), ".gitignore": "*.log\nbuild/\n"})])
    res = run(repo)
    assert (res.source.revision, res.source.label, res.source.dirty) == (sha, "main", False)
    (repo / "debug.log").write_text("x")
    (repo / "build" / "deep").mkdir(parents=True)
    (repo / "build" / "deep" / "out.yaml").write_text("x: 1\n")
    res = run(repo)
    assert (res.source.revision, res.source.dirty) == (sha, False), "ignored files made the tree dirty"
    (repo / "notes.yaml").write_text("x: 1\n")
    res = run(repo)
    assert (res.source.label, res.source.dirty) == ("worktree", True)
    (repo / "notes.yaml").unlink()
    (repo / "apps/web/namespace.yaml").write_text(namespace("other"))
    res = run(repo)
    assert (res.source.label, res.source.dirty) == ("worktree", True)
    assert not (repo / ".git" / "index.lock").exists()


def test_dirty_is_restricted_to_the_directory_given(tmp_path, run):
    repo = tmp_path / "repo"
    fleet = {f"fleet/{k}": v for k, v in app_files().items()}
    [sha] = git_repo(repo, [("one", {**fleet, "docs/readme.md": "hi\n"})])
    (repo / "docs/readme.md").write_text("changed\n")
    (repo / "docs/new.md").write_text("new\n")
    res = run(repo / "fleet")
    assert (res.source.revision, res.source.dirty, res.source.prefix) == (sha, False, "fleet")
    (repo / "fleet/clusters/prod/apps.yaml").chmod(0o755)
    assert run(repo / "fleet").source.dirty


# ------------------------------------------------------------------- 2. git trees checked as git fsck does


@pytest.fixture
def evil_repo(tmp_path):
    """A clean repository with one good commit (main); tests add hostile commits on other branches."""
    repo = tmp_path / "repo"
    git_repo(repo, [("good", app_files())])
    return repo


def test_duplicate_entries_never_write_through_the_symlink(tmp_path, evil_repo, run):
    outside = make_outside(tmp_path)
    repo = evil_repo
    x = blob(repo, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    sub = raw_tree(repo, [("100644", b"x.yaml", x)])
    for target in (str(outside), "../../outside"):
        link = blob(repo, target.encode())
        rows = tree_of(repo, "main") + [("120000", b"a", link), ("40000", b"a", sub)]
        commit_tree(repo, raw_tree(repo, rows), "evil", branch="evil")
        before = fingerprint(outside)
        res = run(repo, ref="evil")
        assert fingerprint(outside) == before and not (outside / "x.yaml").exists()
        assert "duplicateEntries" in refused(res)["a"]
        assert not os.path.lexists(res.source.root / "a")
        assert_confined(res)


def test_dot_dotdot_dotgit_slash_and_empty_names_are_refused_without_crashing(tmp_path, evil_repo, run):
    outside = make_outside(tmp_path)
    repo = evil_repo
    x = blob(repo, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    cfg = blob(repo, f"[core]\n\tfsmonitor = {script(tmp_path, 'dotgit-fsmonitor')}\n".encode())
    sub = raw_tree(repo, [("100644", b"x.yaml", x), ("100644", b"config", cfg)])
    apps = [r for r in tree_of(repo, "main") if r[1] == b"apps"][0][2]
    apps_evil = raw_tree(repo, tree_of(repo, apps) + [("100644", b"..", x)])
    names = [b"..", b".", b".git", b".GIT", b".git.", b"git~1", b".g\xe2\x80\x8cit", b"GIT~1"]
    rows = [r for r in tree_of(repo, "main") if r[1] != b"apps"] + [("40000", b"apps", apps_evil)]
    rows += [("40000", n, sub) for n in names]
    rows += [("100644", b"..\x2f..\x2foutside\x2fescape.yaml", x), ("100644", b"", x), ("100600", b"odd.yaml", x)]
    commit_tree(repo, raw_tree(repo, rows), "evil", branch="evil")
    before = fingerprint(outside)
    res = run(repo, ref="evil")
    got = refused(res)
    assert "hasDotdot" in got[".."] and "hasDotdot" in got["apps/.."] and "hasDot" in got["."]
    for n in (".git", ".GIT", ".git.", "git~1", "GIT~1", ".g\\u200cit"):
        assert "hasDotgit" in got[n], n
    assert "'/'" in got["../../outside/escape.yaml"]
    assert "emptyName" in got["''"]
    assert "badFilemode" in got["odd.yaml"]
    assert sorted(os.listdir(res.source.root)) == ["apps", "clusters"]
    assert fingerprint(outside) == before and markers(tmp_path) == []
    assert res.report.summary()["units_ready"] == 1  # the rest of the tree still reconciles


def test_a_hostile_commit_in_history_is_refused_too(tmp_path, run):
    """The history walk exports earlier commits (to compare StatefulSets) with the same checks as --ref."""
    from .test_pitfalls import STS_V1

    outside = make_outside(tmp_path)
    repo = tmp_path / "repo"
    git_repo(repo, [("good", {**app_files(), "apps/web/sts.yaml": STS_V1,
                              "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml",
                                                                           "deployment.yaml", "sts.yaml")})])
    x = blob(repo, b"kind: ConfigMap\n")
    sub = raw_tree(repo, [("100644", b"x.yaml", x)])
    rows = tree_of(repo, "main")
    evil = commit_tree(repo, raw_tree(repo, rows + [("120000", b"a", blob(repo, str(outside).encode())),
                                                    ("40000", b"a", sub), ("100644", b"..", x)]),
                       "evil", parent=git(repo, "rev-parse", "main"))
    good = commit_tree(repo, raw_tree(repo, rows + [("100644", b"b.yaml", x)]), "good again", parent=evil,
                       branch="main")
    git(repo, "reset", "-q", "--hard", good)
    before = fingerprint(outside)
    res = run(repo, history=5)
    assert [h["sha"] for h in res.report.history][:2] == [good, evil]
    got = refused(res)
    assert "duplicateEntries" in got[f"a@{evil[:12]}"] and "hasDotdot" in got[f"..@{evil[:12]}"]
    assert fingerprint(outside) == before


def test_history_is_bounded(tmp_path, evil_repo, run):
    with pytest.raises(LabkitError) as err:
        run(evil_repo, history=source_mod.MAX_HISTORY + 1)
    assert err.value.field == "--history"


# ----------------------------------------------------------------------- 3. the snapshot is confined


def hostile_links(repo: Path, outside: Path) -> None:
    """Symlinks leading outside the repository in every way: absolute/relative, file/directory, chains, devices."""
    web = repo / "apps/web"
    links = {
        "apps/web/abs-file.yaml": str(outside / "secret.yaml"),
        "apps/web/rel-file.yaml": "../../../outside/secret.yaml",
        "apps/abs-dir": str(outside / "dir"),
        "apps/rel-dir": "../../outside/dir",
        "apps/web/chain1.yaml": "chain2.yaml",
        "apps/web/chain2.yaml": "../chain3",
        "apps/chain3": "../../outside/secret.yaml",
        "apps/web/zero.yaml": "/dev/zero",
        "apps/web/loop": "..",
        "apps/web/alias.yaml": "deployment.yaml",  # inside: kept
        "apps/web/up": "../../clusters",  # inside: kept
    }
    for rel, target in links.items():
        os.symlink(target, repo / rel)
    assert web.is_dir()


HOSTILE_LINK_REASONS = {
    "apps/web/abs-file.yaml": "outside", "apps/web/rel-file.yaml": "outside", "apps/abs-dir": "outside",
    "apps/rel-dir": "outside", "apps/web/chain1.yaml": "outside", "apps/web/chain2.yaml": "outside",
    "apps/chain3": "outside", "apps/web/zero.yaml": "outside", "apps/web/loop": "loop",
}


def test_worktree_snapshot_refuses_links_out_fifos_sockets_and_devices(tmp_path, run):
    outside = make_outside(tmp_path)
    repo = write(tmp_path / "repo", app_files())
    hostile_links(repo, outside)
    os.mkfifo(repo / "apps/web/fifo.yaml")
    os.symlink("fifo.yaml", repo / "apps/web/to-fifo.yaml")
    sock_made = False
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(repo / "apps/web/sock.yaml"))
            sock_made = True
    except OSError:  # a path too long for AF_UNIX on this machine
        pass
    before, out_before = fingerprint(repo), fingerprint(outside)
    res = run(repo)
    got = refused(res)
    for path, why in HOSTILE_LINK_REASONS.items():
        assert why in got.get(path, ""), (path, got)
    assert "FIFO" in got["apps/web/fifo.yaml"] and "never opened" in got["apps/web/fifo.yaml"]
    if sock_made:
        assert "socket" in got["apps/web/sock.yaml"]
    assert os.path.islink(res.source.root / "apps/web/alias.yaml") and os.path.islink(res.source.root / "apps/web/up")
    assert_confined(res)
    assert res.report.summary()["units_ready"] == 1
    assert fingerprint(repo) == before and fingerprint(outside) == out_before
    assert any("left out of the snapshot: apps/web/fifo.yaml" in n for n in res.report.notes)


def test_ref_snapshot_refuses_committed_links_out(tmp_path, run):
    outside = make_outside(tmp_path)
    repo = tmp_path / "repo"
    write(repo, app_files())
    hostile_links(repo, outside)
    git_repo(repo, [("links", {})])
    before = fingerprint(repo)
    res = run(repo, ref="main")
    got = refused(res)
    for path, why in HOSTILE_LINK_REASONS.items():
        assert why in got.get(path, ""), (path, got)
    assert_confined(res)
    assert fingerprint(repo) == before
    clean = run(repo)  # the same links in the work tree: the tree is clean, and refused alike
    assert (clean.source.dirty, refused(clean)) == (False, got)


def test_latin1_names_are_left_out_escaped_not_crashed_on(tmp_path, run):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    x = blob(repo, b"kind: ConfigMap\n")
    rows = tree_of(repo, "main") + [("100644", b"caf\xe9.yaml", x), ("100644", b"\x1b[31mred\x1b[0m.yaml", x)]
    commit_tree(repo, raw_tree(repo, rows), "latin-1", branch="latin")
    Path(os.fsdecode(os.fsencode(repo / "apps/web") + b"/caf\xe9.yaml")).write_text("kind: ConfigMap\n")
    os.mkdir(os.fsencode(repo / "apps") + b"/d\xe9j\xe0")
    for ref in (None, "latin"):
        res = run(repo, ref=ref)
        got = refused(res)
        prefix = "" if ref else "apps/web/"
        assert "not valid UTF-8" in got[prefix + "caf\\xe9.yaml"]
        if ref is None:
            assert "not valid UTF-8" in got["apps/d\\xe9j\\xe0"]
        assert all("\x1b" not in p for p in got)


def test_paths_longer_than_path_max_are_left_out(tmp_path, run):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    name = "d" * 200
    fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(24):  # 24 * 201 bytes: past PATH_MAX wherever the snapshot lives
        os.mkdir(name, dir_fd=fd)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.close(os.open("deep.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    res = run(repo)
    assert any("PATH_MAX" in why for why in refused(res).values())
    # and in a git tree
    x = blob(repo, b"kind: ConfigMap\n")
    tree = raw_tree(repo, [("100644", b"deep.yaml", x)])
    for _ in range(24):
        tree = raw_tree(repo, [("40000", name.encode(), tree)])
    rows = tree_of(repo, "main") + [("40000", name.encode(), tree)]
    commit_tree(repo, raw_tree(repo, rows), "deep", branch="deep")
    res = run(repo, ref="deep")
    assert any("PATH_MAX" in why for why in refused(res).values())


# ----------------------------------------------------------------------------------------------- 4. bounds


def test_files_over_the_size_limit_are_left_out_unread(tmp_path, run):
    repo = write(tmp_path / "repo", app_files())
    with open(repo / "apps/web/huge.yaml", "wb") as fh:
        fh.truncate(source_mod.MAX_FILE_BYTES + 1)
    res = run(repo)
    assert "larger than 20 MiB" in refused(res)["apps/web/huge.yaml"]
    assert not (res.source.root / "apps/web/huge.yaml").exists()


def test_a_snapshot_is_bounded_in_files_and_bytes(tmp_path, run, monkeypatch):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    monkeypatch.setattr(source_mod, "MAX_SNAPSHOT_FILES", 3)
    for ref in (None, "main"):
        with pytest.raises(LabkitError, match="more than 3 files"):
            run(repo, ref=ref)
    monkeypatch.setattr(source_mod, "MAX_SNAPSHOT_FILES", 50_000)
    monkeypatch.setattr(source_mod, "MAX_SNAPSHOT_BYTES", 600)
    for ref in (None, "main"):
        with pytest.raises(LabkitError, match="MiB of files|more than 0 MiB"):
            run(repo, ref=ref)


# ---------------------------------------------------------------------------------- 5. signals and the CLI


def _slow_repo(root: Path) -> Path:
    files = app_files()
    for i in range(3000):
        files[f"docs/cm-{i}.yaml"] = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  k: v\n"
    return write(root, files)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)])
def test_the_snapshot_is_removed_when_the_run_is_killed(tmp_path, sig, code):
    repo = _slow_repo(tmp_path / "repo")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    exe = Path(sys.executable).with_name("labkit")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "labkit"]
    proc = subprocess.Popen([*argv, "try", str(repo), "--json", "--history", "0"], cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith("labkit-try-") for p in tmp.iterdir()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(0.2)
        assert proc.poll() is None, "the run finished before the signal: make the repository bigger"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, proc.stderr.read()
    assert [p.name for p in tmp.iterdir() if p.name.startswith("labkit-try-")] == []


def test_cli_prints_one_escaped_warning_per_refusal_and_none_with_json(tmp_path):
    outside = make_outside(tmp_path)
    repo = write(tmp_path / "repo", app_files())
    os.symlink(str(outside / "secret.yaml"), repo / "apps/web/leak.yaml")
    os.mkfifo(repo / "apps/web/\x1b[2Jfifo.yaml")
    proc = labkit_cli(str(repo), "--history", "0")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("labkit: warning: ")]
    assert sorted(warnings) == sorted([
        f"labkit: warning: apps/web/leak.yaml: symlink to {outside / 'secret.yaml'} leads outside the repository",
        "labkit: warning: apps/web/\\x1b[2Jfifo.yaml: a FIFO (named pipe): never opened"])
    assert "\x1b[2J" not in proc.stderr + proc.stdout and SECRET not in proc.stdout
    proc = labkit_cli(str(repo), "--history", "0", "--json")
    assert proc.returncode == 0 and "warning" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert any("apps/web/leak.yaml" in n for n in doc["notes"]) and SECRET not in proc.stdout


def test_cli_runs_nothing_from_a_hostile_repository_and_refuses_a_dash_ref(tmp_path):
    repo = hostile_git_repo(tmp_path)
    before = fingerprint(repo)
    proc = labkit_cli(str(repo), "--json", "--history", "5")
    assert proc.returncode == 0, proc.stderr
    assert markers(tmp_path) == [] and fingerprint(repo) == before
    proc = labkit_cli(str(repo), "--ref=--output=/tmp/x", "--json")
    assert proc.returncode == 2 and proc.stderr.startswith("labkit: error: --ref: ")


# ------------------------------------------------------------- 6. tree bombs, hostile .git files, huge and odd files


def _count_entries(monkeypatch, cap: int) -> None:
    """Every tree entry the walk produces is counted: more than ``cap`` fails the test at once (an unbounded walk
    would otherwise run for minutes before it reported the same error)."""
    made = [0]
    real = source_mod._Entry

    def counted(*args: Any) -> Any:
        made[0] += 1
        assert made[0] <= cap, f"the tree walk produced more than {cap} entries: it is not bounded as it goes"
        return real(*args)

    monkeypatch.setattr(source_mod, "_Entry", counted)


def tree_bomb(repo: Path, n: int, *, files: bool) -> str:
    """A tree of ``n`` directories that all are one tree of ``n`` entries: files, or (``files=False``) empty
    directories, so that no file is ever produced and only the bound on tree entries visited can stop it."""
    if files:
        inner = [("100644", b"f%d.yaml" % i, blob(repo, b"kind: ConfigMap\n")) for i in range(n)]
    else:
        inner = [("40000", b"d%d" % i, raw_tree(repo, [])) for i in range(n)]
    t2 = raw_tree(repo, sorted(inner, key=lambda r: r[1]))
    return raw_tree(repo, sorted([("40000", b"d%d" % i, t2) for i in range(n)], key=lambda r: r[1]))


def test_a_tree_bomb_stops_at_the_file_limit_as_it_is_walked(tmp_path, run, monkeypatch):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    bomb = tree_bomb(repo, 1000, files=True)  # 1,000,000 files behind two small trees
    commit_tree(repo, raw_tree(repo, tree_of(repo, "main") + [("40000", b"bomb", bomb)]), "evil", branch="evil",
                parent=git(repo, "rev-parse", "main"))
    _count_entries(monkeypatch, source_mod.MAX_SNAPSHOT_FILES + 1)
    start = time.monotonic()
    with pytest.raises(LabkitError, match="more than 50,000 files"):
        run(repo, ref="evil")
    assert time.monotonic() - start < 10


def test_a_tree_bomb_without_files_stops_at_the_tree_entry_limit(tmp_path, run):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    bomb = tree_bomb(repo, 1000, files=False)  # 1,000,000 empty directories: no file limit would ever fire
    commit_tree(repo, raw_tree(repo, tree_of(repo, "main") + [("40000", b"bomb", bomb)]), "evil", branch="evil",
                parent=git(repo, "rev-parse", "main"))
    start = time.monotonic()
    with pytest.raises(LabkitError, match="more than 200,000 tree entries"):
        run(repo, ref="evil")
    assert time.monotonic() - start < 10


def test_a_tree_bomb_in_history_is_recorded_and_the_run_goes_on(tmp_path, run, monkeypatch):
    from .test_pitfalls import STS_V1

    repo = tmp_path / "repo"
    git_repo(repo, [("good", {**app_files(), "apps/web/sts.yaml": STS_V1,
                              "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml",
                                                                           "deployment.yaml", "sts.yaml")})])
    rows = tree_of(repo, "main")
    evil = commit_tree(repo, raw_tree(repo, rows + [("40000", b"bomb", tree_bomb(repo, 1000, files=True))]),
                       "evil", parent=git(repo, "rev-parse", "main"))
    good = commit_tree(repo, raw_tree(repo, rows + [("100644", b"b.yaml", blob(repo, b"kind: ConfigMap\n"))]),
                       "good again", parent=evil, branch="main")
    git(repo, "reset", "-q", "--hard", good)
    _count_entries(monkeypatch, 2 * source_mod.MAX_SNAPSHOT_FILES)  # one bounded walk of the bomb, plus the rest
    start = time.monotonic()
    res = run(repo, history=5)
    assert time.monotonic() - start < 10
    assert [h["sha"] for h in res.report.history][:2] == [good, evil]
    assert "more than 50,000 files" in refused(res)[f"@{evil[:12]}"]
    assert res.report.summary()["units_ready"] == 1


def test_git_runs_with_a_memory_limit_and_a_short_timeout(tmp_path):
    out = source_mod.run_git(tmp_path, ["-c", "alias.limit=!ulimit -v", "limit"])
    assert out.strip() != b"unlimited" and int(out) * 1024 <= 1024 ** 3
    assert source_mod.GIT_TIMEOUT <= 20


def _limited_cli(*args: str) -> subprocess.CompletedProcess:
    """``labkit try`` with 4 GiB of address space (git inherits it: an unbounded git fails instead of eating the
    machine) and 10 s to answer."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 1024 ** 3, 4 * 1024 ** 3))

    exe = Path(sys.executable).with_name("labkit")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "labkit"]
    return subprocess.run([*argv, "try", *args], capture_output=True, text=True, cwd=ROOT, timeout=10,
                          preexec_fn=limit)


@pytest.mark.parametrize("name, kind", [("packed-refs", "fifo"), ("config", "fifo"), ("HEAD", "fifo"),
                                        ("info/exclude", "fifo"), ("objects/info/alternates", "/dev/zero"),
                                        ("index", "/dev/zero"), ("config", "../../outside/config")])
def test_a_git_directory_with_a_fifo_device_or_link_out_is_refused_before_git_runs(tmp_path, name, kind):
    outside = make_outside(tmp_path)
    (outside / "config").write_text("[core]\n\tfsmonitor = true\n")
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    git(repo, "pack-refs", "--all")
    path = repo / ".git" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink(kind, path)
    start = time.monotonic()
    proc = _limited_cli(str(repo), "--history", "0")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("labkit: error: ") and f".git/{name}" in proc.stderr, proc.stderr
    assert time.monotonic() - start < 10


def test_a_git_directory_with_links_inside_it_is_accepted(tmp_path, run):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", app_files())])
    os.rename(repo / ".git/config", repo / ".git/config.real")
    os.symlink("config.real", repo / ".git/config")
    res = run(repo)
    assert res.source.has_git and not res.source.dirty


def _never_read_huge_files(monkeypatch) -> None:
    real = os.read

    def guarded(fd: int, n: int) -> bytes:
        st = os.fstat(fd)
        assert not (stat.S_ISREG(st.st_mode) and st.st_size > source_mod.MAX_FILE_BYTES), \
            "a file over the size limit was read"
        return real(fd, n)

    monkeypatch.setattr(os, "read", guarded)


def test_a_huge_sparse_file_is_never_read_and_makes_the_tree_dirty(tmp_path, run, monkeypatch):
    repo = tmp_path / "repo"
    git_repo(repo, [("one", {**app_files(), ".gitignore": "*.img\n"})])
    with open(repo / "apps/web/ignored.img", "wb") as fh:
        fh.truncate(30 * 1024 ** 3)  # 30 GB, sparse, untracked and ignored: left out, not a change
    _never_read_huge_files(monkeypatch)
    res = run(repo)
    assert "larger than 20 MiB" in refused(res)["apps/web/ignored.img"]
    assert not res.source.dirty
    with open(repo / "apps/web/huge.bin", "wb") as fh:
        fh.truncate(30 * 1024 ** 3)  # not ignored: unread, so it counts as a change
    start = time.monotonic()
    res = run(repo)
    assert time.monotonic() - start < 10
    assert "larger than 20 MiB" in refused(res)["apps/web/huge.bin"]
    assert res.source.dirty and res.source.label == "worktree"


def test_a_file_that_fails_to_read_is_left_out_and_named(tmp_path, private_tmp):
    """/proc/self/mem opens, and reading it fails (EIO); /proc holds others that fail with EAGAIN or EACCES."""
    workdir = Path(tempfile.mkdtemp(prefix="labkit-try-"))
    try:
        src = source_mod.open_source("/proc/self", ref=None, workdir=workdir)
        got = dict(src.refused)
        assert "cannot be read" in got["mem"], got.get("mem")
    finally:
        import shutil

        shutil.rmtree(workdir)
