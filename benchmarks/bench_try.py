"""``labkit try`` on a generated Flux fleet: wall time and peak memory of one whole run.

Target (issue 18): a fleet of 400 objects in 80 units analysed in under 10 s.  The
figure that motivated it came from a real fleet repository (427 objects in 79
units: 53 s and 314 MB), which cannot be shipped; ``write_fleet`` generates one of
the same shape, deterministically, as a git repository in a temporary directory:

* ``clusters/production/flux-system`` — the bootstrap (``GitRepository`` plus the
  ``flux-system`` Kustomization that applies ``clusters/production``);
* ``clusters/production/infrastructure.yaml`` — one Kustomization for the team
  namespaces and the ``cluster-vars`` ConfigMap that ``postBuild.substituteFrom``
  reads;
* ``clusters/production/apps.yaml`` — one Kustomization per app, each
  ``dependsOn`` the infrastructure, applying either the app's base
  (``apps/base/<app>``: Deployment, Service, ConfigMap, HorizontalPodAutoscaler) or,
  for every fourth app, a production overlay (``apps/production/<app>``) that
  patches resources and an environment variable; every third app uses ``postBuild``
  substitution (``${cluster_name}``, ``${log_level:=info}``), every seventh carries
  Flux ``spec.patches`` inline, a few pin a mutable ``:latest`` tag;
* three commits, so the history checks (``--history 5``) have something to read.

With the defaults (``--apps 78``) the fleet has 80 Kustomizations and 402 objects
(``labkit try``'s own count, in its JSON report).  It is measured as a user runs it: a
fresh ``python -m labkit try --json`` process per repeat (imports count), its wall time
(target < 10 s), its CPU time together with its kustomize and git processes (the figure
that moves least with the load of a shared machine), and the peak RSS of the largest
process (labkit itself).  Under ``labkit bench --quick`` the fleet has 20 apps and the
figures carry no target.

    .venv/bin/python benchmarks/bench_try.py [--apps 78] [--repeats 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.app.bench import Figure, quick, report  # noqa: E402

TEAMS = ("payments", "search", "checkout", "identity", "catalog", "shipping", "ledger", "notify")
_GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "fleet-bot", "GIT_AUTHOR_EMAIL": "fleet-bot@example.com",
            "GIT_COMMITTER_NAME": "fleet-bot", "GIT_COMMITTER_EMAIL": "fleet-bot@example.com"}


def _app(i: int) -> tuple[str, str]:
    """(app name, team namespace) of the ``i``-th app."""
    return f"{TEAMS[i % len(TEAMS)]}-svc{i:02d}", TEAMS[i % len(TEAMS)]


def _base(name: str, ns: str, i: int, version: str) -> dict[str, str]:
    image = f"ghcr.io/acme/{name}:latest" if i % 13 == 5 else f"ghcr.io/acme/{name}:{version}"
    env_value = "${log_level:=info}" if i % 3 == 0 else "info"
    d = f"apps/base/{name}"
    return {
        f"{d}/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"namespace: {ns}\nresources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n"
            f"  - hpa.yaml\nlabels:\n  - pairs:\n      app.kubernetes.io/part-of: {ns}\n"),
        f"{d}/deployment.yaml": (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n"
            f"  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n"
            f"        app: {name}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
            f"          ports:\n            - containerPort: 8080\n          envFrom:\n            - configMapRef:\n"
            f"                name: {name}-config\n          env:\n            - name: LOG_LEVEL\n"
            f"              value: \"{env_value}\"\n          readinessProbe:\n            httpGet:\n"
            f"              path: /healthz\n              port: 8080\n          resources:\n            requests:\n"
            f"              cpu: 100m\n              memory: 128Mi\n"),
        f"{d}/service.yaml": (
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n"
            f"  ports:\n    - port: 80\n      targetPort: 8080\n"),
        f"{d}/configmap.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n"
            f"  SERVICE_NAME: {name}\n  CLUSTER: \"{'${cluster_name}' if i % 3 == 0 else 'production'}\"\n"
            f"  UPSTREAM: http://{_app(i + 1)[0]}.{_app(i + 1)[1]}.svc\n"),
        f"{d}/hpa.yaml": (
            f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n"
            f"  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {name}\n"
            f"  minReplicas: 2\n  maxReplicas: {4 + i % 5}\n  metrics:\n    - type: Resource\n      resource:\n"
            f"        name: cpu\n        target:\n          type: Utilization\n          averageUtilization: 70\n"),
    }


def _overlay(name: str) -> dict[str, str]:
    d = f"apps/production/{name}"
    return {
        f"{d}/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../../base/{name}\npatches:\n  - path: resources.yaml\n"
            f"  - target:\n      kind: ConfigMap\n      name: {name}-config\n"
            "    patch: |\n      - op: add\n        path: /data/TIER\n        value: production\n"),
        f"{d}/resources.yaml": (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n"
            "      containers:\n        - name: app\n          resources:\n            requests:\n"
            "              cpu: 250m\n              memory: 256Mi\n            limits:\n              memory: 512Mi\n"),
    }


def _flux_ks(name: str, path: str, *, depends: str | None, substitute: bool, patches: str | None) -> str:
    text = (f"---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m0s\n  retryInterval: 1m0s\n  timeout: 5m0s\n"
            f"  path: {path}\n  prune: true\n  wait: true\n  sourceRef:\n    kind: GitRepository\n"
            f"    name: flux-system\n")
    if depends:
        text += f"  dependsOn:\n    - name: {depends}\n"
    if substitute:
        text += ("  postBuild:\n    substitute:\n      cluster_name: production\n    substituteFrom:\n"
                 "      - kind: ConfigMap\n        name: cluster-vars\n")
    if patches:
        text += patches
    return text


def _inline_patch(name: str) -> str:
    return (f"  patches:\n    - target:\n        kind: Deployment\n        name: {name}\n      patch: |\n"
            f"        - op: add\n          path: /metadata/annotations\n          value:\n"
            f"            fleet.acme.io/owner: platform\n")


def fleet_files(apps: int, version: str = "1.4.2") -> dict[str, str]:
    """Every file of the fleet at one revision (``version`` is the image tag of the pinned apps)."""
    files: dict[str, str] = {
        "README.md": "# acme fleet\n\nGenerated by benchmarks/bench_try.py.\n",
        "clusters/production/flux-system/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - gotk-sync.yaml\n"),
        "clusters/production/flux-system/gotk-sync.yaml": (
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n"
            "  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n"
            "  url: ssh://git@github.com/acme/fleet\n"
            + _flux_ks("flux-system", "./clusters/production", depends=None, substitute=False, patches=None)),
        "clusters/production/infrastructure.yaml": _flux_ks("infra-configs", "./infrastructure/configs",
                                                            depends=None, substitute=False, patches=None),
        "infrastructure/configs/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespaces.yaml\n"
            "  - cluster-vars.yaml\n"),
        "infrastructure/configs/namespaces.yaml": "".join(
            f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {t}\n  labels:\n    team: {t}\n"
            for t in TEAMS),
        "infrastructure/configs/cluster-vars.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n"
            "  cluster_region: eu-west-1\n  log_level: warn\n"),
    }
    units = []
    for i in range(apps):
        name, ns = _app(i)
        files.update(_base(name, ns, i, version))
        overlay = i % 4 == 1
        if overlay:
            files.update(_overlay(name))
        path = f"./apps/production/{name}" if overlay else f"./apps/base/{name}"
        units.append(_flux_ks(f"apps-{name}", path, depends="infra-configs", substitute=i % 3 == 0,
                              patches=_inline_patch(name) if i % 7 == 2 else None))
    files["clusters/production/apps.yaml"] = "".join(units)
    return files


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env={**os.environ, **_GIT_ENV}, check=True, capture_output=True)


def write_fleet(root: Path, apps: int = 78) -> Path:
    """The fleet as a git repository at ``root``: three commits (a smaller fleet, a tag bump, the whole fleet)."""
    root.mkdir(parents=True, exist_ok=True)
    _git(root, "init", "-q", "-b", "main")
    for n, (count, version, msg) in enumerate(((apps // 2, "1.4.1", "first half of the fleet"),
                                                (apps // 2, "1.4.2", "bump images to 1.4.2"),
                                                (apps, "1.4.2", "onboard the remaining teams"))):
        for p in root.iterdir():
            if p.name != ".git":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        for rel, text in fleet_files(count, version).items():
            f = root / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text, encoding="utf-8")
        stamp = f"2026-01-0{n + 1}T10:00:00+00:00"
        _git(root, "add", "-A")
        subprocess.run(["git", "commit", "-q", "-m", msg], cwd=root, check=True, capture_output=True,
                       env={**os.environ, **_GIT_ENV, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return root


def run_try(repo: Path, extra: list[str] | None = None) -> tuple[float, float, float, dict]:
    """One ``labkit try --json`` in a fresh process: (wall s, CPU s, peak RSS MiB, the JSON document).

    CPU is user + system time of the process and of the kustomize and git processes it ran (a shared
    machine's load stretches the wall time, much less the CPU time).  Peak RSS is ``ru_maxrss``: the
    largest single process of the run (labkit itself; kustomize processes are far smaller).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "labkit", "try", str(repo), "--json", *(extra or [])],
                          capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ru_maxrss: the largest child so far
    if proc.returncode != 0:
        raise SystemExit(f"labkit try failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024.0, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=20 if quick() else 78)
    ap.add_argument("--repeats", type=int, default=1 if quick() else 3)
    ap.add_argument("--keep", metavar="DIR", help="write the fleet here and keep it (for profiling)")
    args = ap.parse_args()
    tmp = None
    if args.keep:
        repo = Path(args.keep)
        if repo.exists():
            raise SystemExit(f"{repo}: exists")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="labkit-bench-try-")
        repo = Path(tmp.name) / "fleet"
    try:
        write_fleet(repo, args.apps)
        walls, cpus, rss, doc = [], [], 0.0, {}
        for _ in range(args.repeats):
            wall, cpu, peak, doc = run_try(repo)
            walls.append(wall)
            cpus.append(cpu)
            rss = max(rss, peak)
        units = len(doc.get("units") or [])
        objects = len(doc.get("objects") or [])
        analysis = doc.get("wall_seconds")
        print(f"fleet: {args.apps} apps, {units} units, {objects} objects; "
              f"wall {', '.join(f'{w:.2f}' for w in walls)} s; cpu {', '.join(f'{c:.2f}' for c in cpus)} s")
        full = not quick() and args.apps == 78
        report([
            Figure(f"labkit try, {objects} objects in {units} units (fresh process)", min(walls), "s",
                   target=10.0 if full else None, op="<",
                   note=f"best of {len(walls)}; analysis {analysis} s of it (try_repo), the rest is start-up and JSON"),
            Figure("labkit try CPU (with its kustomize and git processes)", min(cpus), "s",
                   note="user + system; moves less with the machine's load than the wall time"),
            Figure("labkit try peak RSS", rss, "MiB", note="the largest process of the run (labkit itself)"),
        ])
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
