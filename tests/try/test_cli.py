"""``labkit try`` through the real command line (a subprocess): JSON schema, report files, exit codes."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .repos import deployment, flux_ks, kustomization, namespace, write

ROOT = Path(__file__).resolve().parents[2]


def labkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", "try", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture
def repo(tmp_path):
    return write(tmp_path / "repo", {
        "apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "deployment.yaml", "secret.yaml"),
        "apps/web/namespace.yaml": namespace("web"),
        "apps/web/deployment.yaml": deployment("web", image="ghcr.io/acme/web:latest"),
        "apps/web/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: dG9rZW4=\n",
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/web"),
    })


def test_json_document_schema(repo):
    proc = labkit(str(repo), "--json", "--history", "0")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert doc["schema"] == "labkit.try/v1"
    assert set(doc) == {"schema", "input", "root", "revision", "label", "dirty", "seed", "dialects", "targets",
                        "units", "objects", "apply_order", "edges", "pitfalls", "unreconciled", "notes", "history",
                        "wall_seconds", "summary"}
    assert doc["dialects"] == ["flux"] and isinstance(doc["wall_seconds"], float)
    [unit] = doc["units"]
    assert set(unit) >= {"target", "dialect", "kind", "namespace", "name", "path", "status", "health", "reason",
                         "message", "ready_at", "depends_on", "file", "line"}
    assert (unit["name"], unit["status"], unit["file"]) == ("apps", "Ready", "clusters/prod/apps.yaml")
    for o in doc["objects"]:
        assert set(o) >= {"target", "cluster", "unit", "api_version", "kind", "namespace", "name", "outcome",
                          "created_at", "ready_at", "time_to_ready", "message", "file", "line"}
        assert o["outcome"] in ("healthy", "created", "progressing", "failed", "not-applied")
    dep = next(o for o in doc["objects"] if o["kind"] == "Deployment")
    assert dep["outcome"] == "healthy" and dep["time_to_ready"] > 0
    for p in doc["pitfalls"]:
        assert set(p) == {"id", "severity", "file", "line", "object", "message", "fix", "docs", "target"}
        assert p["severity"] in ("error", "warning", "info") and p["docs"]
    assert {p["id"] for p in doc["pitfalls"]} == {"plaintext-secret", "mutable-image-tag"}
    s = doc["summary"]
    assert s["pitfalls"] == len(doc["pitfalls"]) and s["pitfalls_by_severity"]["error"] == 1
    assert s["objects"] == len(doc["objects"]) and s["units_ready"] == 1
    assert all(set(st) == {"target", "unit", "order", "label", "kind", "objects"} for st in doc["apply_order"])


def test_out_writes_html_with_embedded_figures_json_and_pngs(repo, tmp_path):
    out = tmp_path / "out"
    proc = labkit(str(repo), "--out", str(out), "--history", "0")
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text()
    assert "<h2>Pitfalls</h2>" in html and "plaintext-secret" in html and "Apply order" in html
    images = [chunk.split("'", 1)[0] for chunk in html.split("src='data:image/png;base64,")[1:]]
    assert len(images) == 2
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    for png in ("apply-order.png", "time-to-ready.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == "labkit.try/v1" and doc["summary"]["units"] == 1
    assert "Pitfalls (2)" in proc.stdout and "report.html" in proc.stdout


def test_strict_exits_1_on_an_error_pitfall(repo):
    proc = labkit(str(repo), "--strict", "--json", "--history", "0")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["summary"]["pitfalls_by_severity"]["error"] == 1


@pytest.mark.parametrize("case", ["missing", "remote", "escape", "kustomize", "flux-field", "ref-no-git", "empty"])
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, repo):
    if case == "missing":
        args, expect = [str(tmp_path / "nope")], "no such file or directory"
    elif case == "remote":
        args, expect = ["https://github.com/acme/fleet"], "remote URL"
    elif case == "escape":
        args, expect = [str(repo), "--path", "../.."], "--path: '../..' escapes the repository root"
    elif case == "kustomize":
        write(repo, {"apps/web/kustomization.yaml": kustomization("web", "namespace.yaml", "gone.yaml")})
        args, expect = [str(repo)], "kustomize build failed"
    elif case == "flux-field":
        write(repo, {"clusters/prod/apps.yaml": flux_ks("apps", "./apps/web").replace("      prune: true\n", "")})
        args, expect = [str(repo)], "clusters/prod/apps.yaml: spec.prune: required field missing"
    elif case == "empty":
        empty = write(tmp_path / "empty", {"README.md": "# nothing here\n"})
        args, expect = [str(empty)], "nothing to reconcile"
    else:
        args, expect = [str(repo), "--ref", "main"], "--ref"
    proc = labkit(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labkit: error: ")
    assert expect in lines[0]
    assert "Traceback" not in proc.stderr
    if case == "kustomize":
        assert "gone.yaml" in lines[0]
