"""Confinement by construction: kustomize renders a repository in a jail, and labkit's own reads stay inside.

Every test plants a canary — a file outside the repository holding a random
secret — and makes a repository reach for it the ways a hostile kustomization
can (absolute paths, YAML kustomize accepts but PyYAML does not, UTF-16,
bases in other directories, symlinks).  The render must fail or succeed
without a byte of the canary in its output or its error.  Network tests run a
real HTTP server on 127.0.0.1 and count the connections it gets.
"""
from __future__ import annotations

import http.server
import os
import secrets
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from labkit.core.errors import LabkitError
from labkit.gitops import sandbox
from labkit.gitops.render import RemoteRefused, find_kubectl, render, render_documents

pytestmark = pytest.mark.skipif(not sandbox.available(), reason=f"no namespace jail here: {sandbox.status()}")

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


@pytest.fixture
def canary(tmp_path: Path) -> tuple[Path, str]:
    secret = "canary-" + secrets.token_hex(16)
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_text(secret + "\n")
    return path, secret


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
    return root


def outcome(root: Path, path: str = "app", **kw) -> str:
    """Everything a render shows a user: its output, or its error message."""
    try:
        return "\n".join(render_documents(path, root=root, **kw))
    except LabkitError as exc:
        return str(exc)


# ------------------------------------------------------------------ files outside the repository

def test_a_generator_file_outside_the_repository_does_not_exist_for_kustomize(tmp_path, canary):
    path, secret = canary
    root = write(tmp_path / "repo", {"app/kustomization.yaml": f"configMapGenerator:\n- name: pw\n  files: [{path}]\n"})
    shown = outcome(root)
    assert secret not in shown
    assert "is not in or below" in shown  # the pre-check's words (Flux's); the jail would say "no such file"


def test_yaml_that_pyyaml_cannot_parse_is_still_confined(tmp_path, canary):
    """An unknown tag: PyYAML's pre-check skips the file, kustomize reads it; the jail still hides the file."""
    path, secret = canary
    kust = (f"configMapGenerator:\n- name: pw\n  files: !x [{path}]\n"
            "replacements:\n- source: {kind: ConfigMap, name: pw, fieldPath: data.secret\\.txt}\n"
            "  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [metadata.annotations.x]\n")
    root = write(tmp_path / "repo", {"app/kustomization.yaml": kust})
    assert secret not in outcome(root)


def test_a_utf16_kustomization_is_confined(tmp_path, canary):
    path, secret = canary
    kust = f"configMapGenerator:\n- name: pw\n  files: [{path}]\n".encode("utf-16")
    root = write(tmp_path / "repo", {"app/kustomization.yaml": kust})
    assert secret not in outcome(root)


def test_a_base_in_another_directory_of_the_machine_is_not_there(tmp_path, canary):
    path, secret = canary
    other = write(tmp_path / "other-repo", {"kustomization.yaml": "resources: [cm.yaml]\n",
                                            "cm.yaml": CM.format(name=secret)})
    root = write(tmp_path / "repo", {"app/kustomization.yaml": f"resources: [{other}]\n"})
    shown = outcome(root)
    assert secret not in shown
    assert "not in or below" in shown  # the pre-check names it in Flux's words


def test_kustomize_itself_cannot_open_an_absolute_path(tmp_path, canary):
    """Past the pre-check (called directly): the jail is what confines, not the check."""
    path, secret = canary
    root = write(tmp_path / "repo", {"app/kustomization.yaml": f"configMapGenerator:\n- name: pw\n  files: [{path}]\n"})
    app = str((root / "app").resolve())
    argv = sandbox.jail_argv(str(root.resolve()), app,
                             [find_kubectl(), "kustomize", "--load-restrictor=LoadRestrictionsNone", app])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert secret not in proc.stdout + proc.stderr
    assert "no such file or directory" in proc.stderr


def test_a_render_inside_the_repository_still_works(tmp_path):
    root = write(tmp_path / "repo", {"base/kustomization.yaml": "resources: [cm.yaml]\n",
                                     "base/cm.yaml": CM.format(name="web"),
                                     "app/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\n"})
    objs = render("app", root=root)
    assert [o["metadata"]["name"] for o in objs] == ["prod-web"]


# ------------------------------------------------------------------ network

class _Server:
    def __init__(self, body: str):
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.hits += 1
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cm.yaml"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_remote_resource_is_refused_by_default_naming_the_file_and_field(tmp_path):
    with _Server(CM.format(name="remote")) as srv:
        root = write(tmp_path / "repo", {"app/kustomization.yaml": f"resources:\n- {srv.url}\n"})
        with pytest.raises(RemoteRefused) as err:
            render("app", root=root)
        assert srv.hits == 0
    assert str(err.value).startswith("app/kustomization.yaml: resources[0]: remote resource")
    assert "--allow-remote" in str(err.value)


def test_with_allow_remote_a_remote_resource_is_fetched(tmp_path):
    with _Server(CM.format(name="remote")) as srv:
        root = write(tmp_path / "repo", {"app/kustomization.yaml": f"resources:\n- {srv.url}\n"})
        objs = render("app", root=root, allow_remote=True)
        assert srv.hits >= 1
    assert [o["metadata"]["name"] for o in objs] == ["remote"]


def test_the_jail_has_no_network_even_when_the_check_is_bypassed(tmp_path):
    with _Server(CM.format(name="remote")) as srv:
        root = write(tmp_path / "repo", {"app/kustomization.yaml": f"resources:\n- {srv.url}\n"})
        app = str((root / "app").resolve())
        argv = sandbox.jail_argv(str(root.resolve()), app,
                                 [find_kubectl(), "kustomize", "--load-restrictor=LoadRestrictionsNone", app])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert srv.hits == 0
    assert proc.returncode != 0


@pytest.mark.parametrize("url", [
    "file:///nonexistent/x?ref=--upload-pack=touch${IFS}/tmp/pwned|true",
    "https://example.com/org/repo?ref=-oProxyCommand=touch%20/tmp/pwned",
    "git::https://example.com/-u/repo",
    "file:///home/someone/other-repo",
])
def test_urls_that_become_options_or_reach_local_files_are_refused_even_when_remote_is_allowed(tmp_path, url):
    marker = tmp_path / "pwned"
    root = write(tmp_path / "repo", {"app/kustomization.yaml": f"resources:\n- '{url.replace('/tmp/pwned', str(marker))}'\n"})
    with pytest.raises(RemoteRefused):
        render("app", root=root, allow_remote=True)
    assert not marker.exists()


# ------------------------------------------------------------------ labkit's own reads

def test_read_confined_refuses_symlinks_out_fifos_devices_and_huge_files(tmp_path, canary):
    path, secret = canary
    root = tmp_path / "repo"
    root.mkdir()
    (root / "ok.yaml").write_text("a: 1\n")
    os.symlink(path, root / "out.yaml")
    os.symlink("../outside/secret.txt", root / "rel.yaml")
    os.symlink("/dev/zero", root / "zero.yaml")
    os.mkfifo(root / "fifo.yaml")
    os.symlink("fifo.yaml", root / "to-fifo.yaml")
    (root / "big.yaml").write_bytes(b"x" * 2048)
    assert sandbox.read_confined(root, "ok.yaml") == b"a: 1\n"
    for name, words in [("out.yaml", "outside the repository"), ("rel.yaml", "outside the repository"),
                        ("zero.yaml", "outside the repository"), ("fifo.yaml", "not a regular file"),
                        ("to-fifo.yaml", "not a regular file")]:
        with pytest.raises(LabkitError) as err:
            sandbox.read_confined(root, name)
        assert str(err.value).startswith(name + ": ") and words in str(err.value)
        assert secret not in str(err.value)
    with pytest.raises(LabkitError, match="over the 1024-byte limit"):
        sandbox.read_confined(root, "big.yaml", max_bytes=1024)


def test_the_probe_says_how_renders_are_confined():
    assert sandbox.status().startswith("kustomize runs in a user/mount/network namespace jail")


def test_no_socket_leaves_a_jailed_sops(tmp_path):
    """sops contacts key services an encrypted file names (Vault here); in the jail there is no route."""
    from labkit.secrets.sops import SopsError, decrypt

    hits = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    doc = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n"
           "  k: ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n"
           "sops:\n  hc_vault:\n  - vault_address: http://127.0.0.1:%d\n    engine_path: sops\n    key_name: k\n"
           "    created_at: '2026-01-01T00:00:00Z'\n    enc: vault:v1:AAAA\n"
           "  lastmodified: '2026-01-01T00:00:00Z'\n  mac: ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAA==,"
           "tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n  version: 3.9.0\n") % port
    with pytest.raises(SopsError):
        decrypt(doc, identities=[], timeout=30)
    try:
        conn, _ = srv.accept()
        hits.append(conn)
    except (socket.timeout, BlockingIOError):
        pass
    srv.close()
    assert hits == []


def test_without_the_jail_an_inline_generator_cannot_read_outside(tmp_path, canary, monkeypatch):
    """The strict pre-check (kernels without user namespaces) refuses inline plugin configs it cannot check."""
    path, secret = canary
    monkeypatch.setattr(sandbox, "available", lambda: False)
    inline = ("apiVersion: builtin\\nkind: ConfigMapGenerator\\nmetadata:\\n  name: leak\\n"
              f"files:\\n- leak={path}\\n")
    root = write(tmp_path / "repo", {"app/kustomization.yaml": f'generators:\n- "{inline}"\n'})
    shown = outcome(root)
    assert secret not in shown
    assert "inline plugin configuration" in shown
