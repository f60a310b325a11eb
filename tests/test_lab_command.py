"""``labkit lab``: runs as root, prints the URL to open, opens a workshop workspace with LABKIT_WORKSPACE set."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labkit.app import cli

REPO = Path(__file__).resolve().parent.parent


def test_allow_root_only_as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cmd, _ = cli.lab_command(["--no-browser"])
    assert "--allow-root" in cmd and cmd[-1] == "--no-browser"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in cli.lab_command([])[0]


def test_url_names_the_chosen_port_and_token_and_user_options_win():
    cmd, root = cli.lab_command([])
    url = cli.lab_url(cmd, root)
    port, token = cli._lab_option(cmd, "--ServerApp.port"), cli._lab_option(cmd, "--IdentityProvider.token")
    assert url.startswith(f"http://127.0.0.1:{port}/lab") and url.endswith(f"?token={token}") and len(token) >= 32
    cmd, root = cli.lab_command(["--port", "9999", "--IdentityProvider.token=abc", "--ip=0.0.0.0"])
    assert cli.lab_url(cmd, root).startswith("http://127.0.0.1:9999/lab") and cli.lab_url(cmd, root).endswith("token=abc")
    assert sum(a.startswith("--IdentityProvider.token") for a in cmd) == 1


def test_workspace_must_be_a_workspace(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "labkit", "lab", "--workspace", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "not a labkit workshop workspace" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_lab_serves_a_workspace_and_prints_its_url(tmp_path):
    ws = tmp_path / "ws"
    assert subprocess.run([sys.executable, "-m", "labkit", "workshop", "start", str(ws)], capture_output=True,
                          timeout=120).returncode == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LABKIT_WORKSPACE", None)
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "--workspace", str(ws), "--no-browser"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and url is None:
            for line in log.read_text().splitlines():
                if line.strip().startswith("http://127.0.0.1:"):
                    url = line.strip()
            time.sleep(0.2)
        assert url, log.read_text()
        assert "/lab/tree/notebooks/00-start-here.ipynb?token=" in url
        base, token = url.split("/lab/")[0], url.split("token=")[1]
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                req = urllib.request.Request(f"{base}/api/contents/?token={token}")
                body = urllib.request.urlopen(req, timeout=5).read().decode()  # noqa: S310 - our own server
            except OSError:
                time.sleep(0.3)
        assert body and '"fleet"' in body and '"notebooks"' in body  # the workspace is the root
    finally:
        proc.terminate()
        proc.wait(timeout=30)
