"""A scripted fake API server on 127.0.0.1 (plain HTTP): discovery, and canned answers per request.

It records every request (method, path, query, content type, JSON body) so tests can
check what ``KubeCluster`` sends — the shape of server-side apply, dry runs, deletes —
without a real control plane.  Behaviour beyond discovery comes from ``responses``:
``{(METHOD, path): [(status, body, headers), ...]}`` consumed in order (the last one
repeats); anything unscripted is a 404 Status.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from labkit.kube.versions import KUBERNETES_VERSION


def _res(name, kind, namespaced, verbs=("get", "list", "watch", "create", "update", "patch", "delete")):
    return {"name": name, "singularName": kind.lower() if "/" not in name else "", "namespaced": namespaced,
            "kind": kind, "verbs": list(verbs)}


DISCOVERY = {
    # what kube-apiserver at the pinned version answers (labkit/kube/versions.py)
    "/version": {"major": "1", "minor": KUBERNETES_VERSION.split(".")[1], "gitVersion": KUBERNETES_VERSION},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
        {"name": "example.com", "versions": [{"groupVersion": "example.com/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "example.com/v1", "version": "v1"}},
    ]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        _res("configmaps", "ConfigMap", True), _res("namespaces", "Namespace", False),
        _res("namespaces/status", "Namespace", False, ("get", "patch", "update")),
        _res("pods", "Pod", True), _res("pods/status", "Pod", True, ("get", "patch", "update")),
    ]},
    "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
        _res("deployments", "Deployment", True), _res("deployments/status", "Deployment", True, ("get", "patch", "update")),
        _res("deployments/scale", "Scale", True, ("get", "patch", "update")),
    ]},
    "/apis/example.com/v1": {"kind": "APIResourceList", "groupVersion": "example.com/v1", "resources": [
        _res("widgets", "Widget", True)]},
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class FakeApi:
    responses: dict[tuple[str, str], list[tuple[int, Any, dict]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    server: Any = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, method: str, path: str, *answers: tuple) -> None:
        self.responses[(method, path)] = [a if len(a) == 3 else (a[0], a[1], {}) for a in answers]

    def calls(self, method: str | None = None, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)
                and r.path not in DISCOVERY]

    def kubeconfig(self, path: Path) -> Path:
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
               "users": [{"name": "fake", "user": {"token": "t"}}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}
        path.write_text(yaml.safe_dump(cfg))
        return path


def not_found_status(message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "NotFound", "details": {}, "code": 404}


def start() -> FakeApi:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            api.requests.append(Request(self.command, parts.path, parse_qs(parts.query),
                                        self.headers.get("Content-Type", ""), body))
            if self.command == "GET" and parts.path in DISCOVERY:
                return self._send(200, DISCOVERY[parts.path], {})
            answers = api.responses.get((self.command, parts.path))
            if answers:
                status, out, headers = answers.pop(0) if len(answers) > 1 else answers[0]
                return self._send(status, out, headers)
            return self._send(404, not_found_status("the server could not find the requested resource"), {})

        def _send(self, status: int, out: Any, headers: dict) -> None:
            data = out.encode() if isinstance(out, str) else json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(out, str) else "text/plain")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    api.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=api.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return api
