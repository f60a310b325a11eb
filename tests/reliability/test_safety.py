"""Safety checks: subprocesses, paths, webhooks and secrets, asserted through the code paths that matter.

* Rendering runs ``kubectl kustomize`` as an argv list — never through a shell —
  with a timeout, and a kubectl that hangs is cut off at that timeout.
* Every path a build reads is confined to the checked-out revision: ``../..``,
  absolute paths, symlinks (to directories or files) and kustomization
  references that lead out are refused, and exporting a revision recreates a
  symlink instead of copying what it points at.
* Webhook deliveries are size-limited and signature-checked before anything
  happens, and the token never shows in a log, an exception or a ``repr``.
* Secret values seeded into git never appear in the event log, git's log,
  statuses, the tour's timeline tables, or (with ``-m notebooks``) the executed
  tour notebook and its ``metrics.json``.
"""
from __future__ import annotations

import ast
import base64
import importlib
import hashlib
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from labkit.gitops.render import (PathConfinementError, PathNotFoundError, RenderTimeoutError, Renderer, confine,
                                  render)
from labkit.gitops import sandbox
from labkit.gitops.repo import ManifestRepo
from labkit.gitops.webhook import MAX_BODY_BYTES, WebhookReceiver, github_delivery, sign
from labkit.core.events import EventLog
from tests.notebook_runs import group as notebook_group

render_mod = importlib.import_module("labkit.gitops.render")  # the package re-exports a function named render
PACKAGE = Path(render_mod.__file__).resolve().parents[1]
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\ndata:\n  x: \"1\"\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


# ------------------------------------------------------------------ subprocesses

def test_kustomize_runs_as_an_argv_list_without_a_shell_and_with_a_timeout(tmp_path, monkeypatch):
    tree(tmp_path, {"apps/a.yaml": CM})
    seen = {}
    real_run = subprocess.run

    def spy(args, **kw):
        seen["args"], seen["kw"] = args, kw
        return real_run(args, **kw)

    monkeypatch.setattr(render_mod.subprocess, "run", spy)
    objs = Renderer(timeout=7.5).render("./apps", root=tmp_path, key="k")
    assert [o["metadata"]["name"] for o in objs] == ["a"]
    args = seen["args"]
    assert isinstance(args, list)
    program = args[args.index("--") + 1:] if "--" in args else args
    assert program[1:3] == ["kustomize", "--load-restrictor=LoadRestrictionsNone"]
    if sandbox.available():  # a repository render goes through the namespace jail
        assert args[3].endswith("_jail.py") and args[1:3] == ["-I", "-S"]
    assert not seen["kw"].get("shell")
    assert seen["kw"]["timeout"] == 7.5
    assert seen["kw"]["stdin"] is subprocess.DEVNULL


def test_a_hanging_kubectl_is_cut_off_at_the_timeout(tmp_path):
    tree(tmp_path, {"apps/a.yaml": CM})
    hang = tmp_path / "kubectl"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    t0 = time.monotonic()
    with pytest.raises(RenderTimeoutError) as info:
        render("./apps", root=tmp_path, kubectl=hang, timeout=1.0)
    assert time.monotonic() - t0 < 10  # the 60 s sleep was killed, not waited for
    assert str(info.value) == "./apps: kustomize build timed out after 1s"


def test_shell_metacharacters_in_paths_are_just_characters(tmp_path):
    evil = "apps;touch PWNED_1 && $(touch PWNED_2) `touch PWNED_3`"
    tree(tmp_path, {f"{evil}/a.yaml": CM})
    objs = render(f"./{evil}", root=tmp_path)
    assert [o["metadata"]["name"] for o in objs] == ["a"]
    for d in (tmp_path, Path.cwd(), tmp_path / evil):
        assert not any(p.name.startswith("PWNED") for p in d.iterdir())


def _calls(tree_: ast.AST):
    for node in ast.walk(tree_):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def test_no_shell_anywhere_in_labkit():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node, owner, name in _calls(ast.parse(path.read_text(), str(path))):
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in node.keywords):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} shell=")
            if (owner, name) in (("os", "system"), ("os", "popen"), ("subprocess", "getoutput"),
                                 ("subprocess", "getstatusoutput")):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {owner}.{name}")
    assert offenders == []


@pytest.mark.parametrize("module", ["labkit/gitops/render.py", "labkit/secrets/sops.py"])
def test_build_time_subprocesses_always_have_a_timeout(module):
    """The subprocesses that read repository content while building (kustomize, sops) are bounded."""
    path = PACKAGE.parent / module
    if not path.exists():
        pytest.skip(f"{module} not built yet")
    runs = [(n, name) for n, owner, name in _calls(ast.parse(path.read_text())) if owner == "subprocess"
            and name in ("run", "call", "check_call", "check_output")]
    assert runs, f"{module} runs no subprocess any more: update this test"
    assert [n.lineno for n, _ in runs if not any(k.arg == "timeout" for k in n.keywords)] == []


# ------------------------------------------------------------------ paths

@pytest.mark.parametrize("path, fragment", [
    ("../..", "is not in or below"),
    ("/etc", "is not in or below"),
    ("apps/../../outside", "is not in or below"),
])
def test_requested_paths_are_confined_to_the_checkout(tmp_path, path, fragment):
    root = tree(tmp_path / "checkout", {"apps/a.yaml": CM})
    with pytest.raises(PathConfinementError) as info:
        confine(root, path)
    assert fragment in str(info.value) and info.value.path == path


def test_missing_paths_are_reported_as_such(tmp_path):
    root = tree(tmp_path / "checkout", {"apps/a.yaml": CM})
    with pytest.raises(PathNotFoundError):
        confine(root, "./nowhere")


def test_symlinks_out_of_the_checkout_are_refused_and_in_it_allowed(tmp_path):
    root = tree(tmp_path / "checkout", {"apps/a.yaml": CM, "shared/b.yaml": CM.replace("name: a", "name: b")})
    os.symlink("../shared/b.yaml", root / "apps" / "b.yaml")  # inside: fine
    assert confine(root, "./apps") == (root / "apps").resolve()
    os.symlink("/etc", root / "apps" / "etc")
    with pytest.raises(PathConfinementError, match="symlink 'apps/etc' points to '/etc'"):
        confine(root, "./apps")
    os.unlink(root / "apps" / "etc")
    os.symlink("/etc/hostname", root / "apps" / "host.yaml")
    with pytest.raises(PathConfinementError, match="symlink 'apps/host.yaml'"):
        confine(root, "./apps")
    os.unlink(root / "apps" / "host.yaml")
    os.symlink(str(tmp_path), root / "escape")  # a symlinked directory as the requested path
    with pytest.raises(PathConfinementError, match="resolves to"):
        confine(root, "./escape")


def test_kustomization_references_and_components_are_confined(tmp_path):
    root = tree(tmp_path / "checkout", {"apps/a.yaml": CM,
                                        "apps/kustomization.yaml": "resources:\n- a.yaml\n- ../../../../etc/hostname\n"})
    with pytest.raises(PathConfinementError, match="apps/kustomization.yaml refers to '../../../../etc/hostname'"):
        confine(root, "./apps")
    (root / "apps" / "kustomization.yaml").write_text("resources:\n- a.yaml\n")
    with pytest.raises(PathConfinementError, match="component '../../x'"):
        render("./apps", root=root, overrides={"components": ["../../x"]})


def test_repository_writes_cannot_leave_the_repository(tmp_path):
    repo = ManifestRepo(tmp_path / "repo")
    for bad in ("../escape.yaml", "/etc/passwd", "apps/../../x", ".git/hooks/post-checkout"):
        with pytest.raises(Exception, match="invalid repository path"):
            repo.commit({bad: "x"}, message="m", author="a", when=0)


def test_exporting_a_revision_recreates_symlinks_instead_of_following_them(tmp_path):
    src = tree(tmp_path / "src", {"apps/a.yaml": CM})
    os.symlink("/etc/hostname", src / "apps" / "host.yaml")
    repo = ManifestRepo(tmp_path / "repo")
    repo.seed(src, when=0)
    out = repo.export("main")
    link = out / "apps" / "host.yaml"
    assert link.is_symlink() and os.readlink(link) == "/etc/hostname"  # the artifact never holds the target's bytes
    with pytest.raises(PathConfinementError):
        render("./apps", root=out)


# ------------------------------------------------------------------ webhooks

TOKEN = "w3bh00k-t0ken-do-not-log"


def receiver(log: EventLog) -> tuple[WebhookReceiver, list]:
    r = WebhookReceiver(TOKEN, log)
    got: list = []
    r.subscribe(got.append)
    return r, got


def test_webhook_bodies_are_size_limited_before_anything_else(tmp_path):
    log = EventLog()
    r, got = receiver(log)
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, TOKEN)}  # even correctly signed
    assert r.receive(headers, body) is False
    assert got == []
    [rej] = log.filter(event="WebhookRejected")
    assert rej.detail["status"] == 413 and rej.detail["bytes"] == len(body)
    assert rej.detail["reason"] == f"request body exceeds the maximum size of {MAX_BODY_BYTES} bytes"


@pytest.mark.parametrize("mangle, reason", [
    (lambda h, b: ({k: v for k, v in h.items() if "Signature" not in k}, b), "missing signature"),
    (lambda h, b: ({**h, "X-Hub-Signature-256": sign(b, "wrong-token")}, b), "payload signature check failed"),
    (lambda h, b: (h, b.replace(b"main", b"prod")), "payload signature check failed"),
    (lambda h, b: ({**h, "X-Hub-Signature-256": "md5=abcd"}, b), "unknown hash type prefix"),
    (lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=zz"}, b), "error decoding signature"),
])
def test_webhook_signatures_are_checked(mangle, reason):
    log = EventLog()
    r, got = receiver(log)
    headers, body = github_delivery({"ref": "refs/heads/main", "after": "a" * 40}, TOKEN)
    assert r.receive(*mangle(headers, body)) is False
    assert got == [] and reason in log.filter(event="WebhookRejected")[0].detail["reason"]
    assert r.receive(headers, body) is True and len(got) == 1  # the genuine delivery still works


def test_the_webhook_token_never_shows(tmp_path):
    log = EventLog()
    r, _ = receiver(log)
    headers, body = github_delivery({"ref": "refs/heads/main"}, TOKEN)
    r.receive(headers, body)
    r.receive({**headers, "X-Hub-Signature-256": sign(body, "nope")}, body)
    frame = log.to_frame().astype(str).to_csv()
    assert TOKEN not in frame and TOKEN not in repr(r) and TOKEN not in str(r)
    assert hashlib.sha256(TOKEN.encode()).hexdigest() not in frame


def test_a_forged_push_does_not_trigger_a_reconcile(tmp_path):
    from tests.flux.conftest import FluxLab, cm

    lab = FluxLab(tmp_path, {"apps/a.yaml": cm("a", x="1")})
    lab.source(interval="10m")
    lab.kustomization()
    receiver_ = lab.flux.enable_webhook(lab.repo, token=TOKEN)
    lab.run(10)
    headers, body = github_delivery({"ref": "refs/heads/main", "repository": {"full_name": "labkit/fleet"}}, "guess")
    assert receiver_.receive(headers, body, time=10) is False
    lab.run(30)
    fleet = lab.cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository", "fleet", "flux-system")
    assert "reconcile.fluxcd.io/requestedAt" not in (fleet["metadata"].get("annotations") or {})
    assert [e.time for e in lab.log.filter(component="source-controller", event="NewArtifact")] == [1.0]


# ------------------------------------------------------------------ secret values

def test_secret_values_from_git_never_reach_logs_statuses_or_the_tour_tables():
    """The tour's lab with two Secrets committed (one changed, one drifted live): grep every output for them."""
    from labkit.faults.invariants import no_secret_leaks
    from labkit.scenarios import tour
    from labkit.scenarios.lab import FleetLab

    values = ["tour-s3cret-0ne-do-not-log", "tour-s3cret-tw0-do-not-log", "tour-s3cret-thr33-do-not-log"]

    def secret(name: str, value: str) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": name, "namespace": "podinfo-staging"}, "type": "Opaque",
                           "data": {"password": base64.b64encode(value.encode()).decode()}})

    lab = FleetLab(seed=3, webhook=True)
    overlay = lab.overlay("staging")
    kfile = f"{overlay}/kustomization.yaml"
    kust = yaml.safe_load(lab.repo.read(kfile))
    kust["resources"] += ["db-secret.json", "api-secret.json"]
    lab.repo.commit({kfile: yaml.safe_dump(kust, sort_keys=False), f"{overlay}/db-secret.json": secret("db", values[0]),
                     f"{overlay}/api-secret.json": secret("api", values[1])}, message="secrets", author="alice", when=0)
    assert lab.run_until(lambda: lab.ready().get("status") == "True"
                         and lab.cluster().get("v1", "Secret", "db", "podinfo-staging") is not None, timeout=900)
    lab.repo.commit({f"{overlay}/db-secret.json": secret("db", values[2])}, message="rotate", author="alice",
                    when=lab.now)
    lab.cluster().kubectl_edit("v1", "Secret", "api", "podinfo-staging",
                               lambda o: o["data"].update(password=base64.b64encode(b"hotfix-leak-me").decode()))
    values.append("hotfix-leak-me")
    lab.advance(700)
    flux = lab.flux["staging"]
    assert lab.cluster().get("v1", "Secret", "db", "podinfo-staging")["data"]["password"] == \
        base64.b64encode(values[2].encode()).decode()
    plan = flux.diff("apps")
    statuses = [o.get("status") or {} for kind, av in (("Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
                                                       ("GitRepository", "source.toolkit.fluxcd.io/v1"))
                for o in lab.cluster().list(av, kind)]
    trace = tour.CommitTrace("webhook", lab.repo.head(), 0.0)
    texts = {
        "git log": lab.git_log.to_frame().astype(str).to_csv(),
        "timeline": tour.stage_timeline(lab, trace).to_csv(),
        "noop report": json.dumps(tour.noop_writes(lab), default=str),
        "flux diff": "\n".join(f"{e.subject} {e.action} {e.drift}" for e in plan.entries),
    }
    assert no_secret_leaks(values, log=lab.cluster().log, statuses=statuses, texts=texts) == []


@pytest.mark.notebooks
@notebook_group("tour")
def test_the_executed_tour_notebook_and_its_outputs_hold_no_secrets(notebook_runs):
    """The tour executed headless (as CI does; the run tests/test_notebooks.py checks): grep the notebook,
    metrics.json and run log for the token."""
    from labkit.scenarios.lab import WEBHOOK_TOKEN

    run = notebook_runs.get("tour")
    res = run.result
    assert res.ok, res.error
    outputs = [p for p in run.out_dir.iterdir() if p.suffix in (".ipynb", ".json", ".log")]
    assert {p.suffix for p in outputs} >= {".ipynb", ".json"}
    for p in outputs:
        text = p.read_text(errors="replace")
        assert WEBHOOK_TOKEN not in text, p.name
        assert base64.b64encode(WEBHOOK_TOKEN.encode()).decode() not in text, p.name
