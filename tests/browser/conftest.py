"""Fixtures for the browser tests: a participant workspace served by ``labkit lab``, and Debian's Chromium.

``lab`` starts ``labkit lab --workspace WS --no-browser`` exactly as a participant
would (127.0.0.1, a free port, a fresh token — all chosen by ``labkit lab``) and
reads the URL it prints.  ``browser`` is Debian's ``chromium`` package driven by
Playwright's Python client with ``executable_path`` — no ``playwright install``,
no downloaded browser.  Without Chromium (``apt-get install -y chromium
chromium-driver``; ``.ci/run`` installs it) or without the ``playwright`` package
(the ``test`` extras) every browser test is skipped, saying which is missing.

Screenshots go to ``$LABKIT_BROWSER_OUT`` (default ``reports/browser/``), one
folder per test.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    env = os.environ.get("LABKIT_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for c in CHROMIUM_CANDIDATES:
        if Path(c).is_file():
            return c
    return shutil.which("chromium")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    mine = [i for i in items if here in Path(str(i.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    reason = None
    if chromium_path() is None:
        reason = ("Debian's Chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run installs "
                  "it when missing)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Lab:
    """A running ``labkit lab``: its workspace, base URL and token."""

    workspace: Path
    base: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 - our own server on 127.0.0.1
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every kernel (one notebook's simulation at a time keeps the machine responsive)."""
        for s in self.api("GET", "sessions") or []:  # type: ignore[union-attr]
            self.api("DELETE", f"sessions/{s['id']}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("browser")
    ws = root / "workspace"
    proc = subprocess.run([sys.executable, "-m", "labkit", "workshop", "start", str(ws)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_WORKSPACE"}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    log = root / "labkit-lab.log"
    out = open(log, "w")
    server = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "--workspace", str(ws), "--no-browser"],
                              stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            assert server.poll() is None, f"labkit lab exited: {log.read_text()}"
            for line in log.read_text().splitlines():
                if line.strip().startswith("http://127.0.0.1:") and "token=" in line:
                    url = line.strip()
            time.sleep(0.2)
        assert url, f"labkit lab printed no URL: {log.read_text()}"
        base, token = url.split("/lab")[0], url.split("token=")[1]
        lab = Lab(ws, base, token, log)
        while time.monotonic() < deadline:
            try:
                lab.api("GET", "status")
                break
            except OSError:
                time.sleep(0.3)
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        out.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # root: no user namespaces
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=[*args, "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(request) -> Path:
    """The test's screenshot folder: $LABKIT_BROWSER_OUT/<test name>/ (default reports/browser/)."""
    root = Path(os.environ.get("LABKIT_BROWSER_OUT") or REPO / "reports" / "browser")
    folder = root / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1500, "height": 1500})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        context.close()
        lab.shutdown_kernels()
