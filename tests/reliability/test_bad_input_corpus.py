"""The bad-input corpus: every malformed input gives one clear message naming the file and field.

Each case is a directory under ``tests/data/bad_input/`` with an ``expect.yaml``:

``via``      how the input reaches labkit:
             ``flux``          committed to git on top of a good revision and reconciled by Flux
                               (``kustomization:`` may also change the Kustomization's spec);
             ``flux-object``   a Flux object file applied with ``FluxSystem.apply``;
             ``scenario-cli``  ``labkit <args>`` in a subprocess;
             ``argo``          committed to git on top of a good revision and reconciled by an
                               automated Argo CD Application over ``apps/`` (refreshed by the
                               push webhook); ``condition`` is the Application condition type
                               that must carry the message;
             ``argo-object``   an Argo CD object file (Application, ApplicationSet) applied with
                               ``ArgoSystem.apply`` next to a synced Application;
             ``argo-hook`` / ``argo-appset``  the Argo CD dialect's parsers;
             ``secrets-guard`` the pre-commit plaintext-Secret guard;
``error``    a fragment the message must contain;
``file``     the file (or, for API refusals, the object ``Kind/namespace/name``) it must name;
``field``    the field (or line) it must name, or null;
``reason``   (``flux``) the ``Ready=False`` reason;
``condition`` (``argo``) the Application condition type (``ComparisonError`` ...);
``generate`` a large input made at test time instead of committed (``huge-broken``,
             ``alias-bomb``, ``deep-nesting``, ``huge-configmap``);
``age_key_secret`` (``flux``) create this SOPS age-key Secret in flux-system first;
``requires`` a module that must exist for the case to run (else skipped, saying so);
``xfail``    a known gap, with the reason (strict: the test fails once the gap is fixed).

Files live under ``files/`` (the bad change) and ``base/`` (extra files of the good
revision).  For ``flux`` cases the good revision (``apps/good.yaml`` plus ``base/``)
is applied first; then the bad change is committed through a real clone and push
(symlinks included).  The case passes when the Kustomization is ``Ready=False`` with
the expected reason and a message naming the file and field, nothing of the bad
revision was applied (every live object is byte-for-byte what it was), and
``lastAppliedRevision`` is still the good revision.  ``argo`` cases pass the same
way: the Application carries the condition with a message naming the file and
field, no operation was started for the bad revision, every live object is what
it was, and ``status.history`` still ends at the good revision.
"""
from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability.counts import RUN_COUNTS

from labkit.engine.apply import EngineTimings
from labkit.core.errors import LabkitError
from labkit.flux.system import FluxSystem, FluxTimings
from labkit.gitops.render import Renderer
from labkit.gitops.repo import ManifestRepo
from labkit.sim import SimCluster

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad_input"
REPO_ROOT = Path(__file__).resolve().parents[2]
URL = "https://github.com/labkit/fleet"
GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n  namespace: default\ndata:\n  a: \"1\"\n"
LIVE_KINDS = [("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "Deployment"),
              ("batch/v1", "Job"), ("v1", "Namespace")]
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.yaml").is_file())


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CORPUS / name / "expect.yaml").read_text())


def test_the_corpus_is_big_enough_and_well_formed():
    assert len(CASES) >= 30
    for name in CASES:
        e = load(name)
        assert e["via"] in ("flux", "flux-object", "scenario-cli", "argo", "argo-object", "argo-hook", "argo-appset",
                            "secrets-guard"), name
        assert e.get("error") and e.get("description"), name
        assert "file" in e and "field" in e, name
        if e["via"] == "flux":
            assert e.get("reason"), name
        if e["via"] == "argo":
            assert e.get("condition"), name


def check_message(message: str, e: dict[str, Any]) -> None:
    """One clear message: the error, the file and the field are named; no traceback."""
    assert e["error"] in message, message
    if e.get("file"):
        assert e["file"] in message, message
    if e.get("field"):
        assert e["field"] in message, message
    assert "Traceback" not in message


def requires(e: dict[str, Any]) -> None:
    mod = e.get("requires")
    if not mod:
        return
    if mod.startswith("labkit.argo") and importlib.util.find_spec("labkit.argo") is None:
        pytest.skip("Argo CD dialect not built yet")
    try:
        importlib.import_module(mod)
    except ImportError:
        pytest.skip(f"{mod} not built yet: enable this case when it exists")


def mark(e: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if e.get("xfail"):
        request.applymarker(pytest.mark.xfail(reason=e["xfail"], strict=True))


# ------------------------------------------------------------------ generated inputs

def generate(spec: dict[str, Any], root: Path) -> None:
    path = root / spec["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = spec["kind"]
    if kind == "huge-broken":
        doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: filler-{i}\n  namespace: default\ndata:\n  v: \"{v}\"\n---\n"
        target = int(spec.get("size_mb", 5) * 1024 * 1024)
        parts, size, i = [], 0, 0
        while size < target:
            part = doc.format(i=i, v="x" * 200)
            parts.append(part)
            size += len(part)
            i += 1
        parts.append("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: last\n")  # never closed
        path.write_text("".join(parts))
    elif kind == "alias-bomb":
        lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: bomb", "  namespace: default", "data:",
                 '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 10):
            lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
        path.write_text("\n".join(lines) + "\n")
    elif kind == "deep-nesting":
        depth = int(spec.get("depth", 50000))
        path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  namespace: default\n"
                        f"data:\n  x: {'[' * depth}{']' * depth}\n")
    elif kind == "huge-configmap":
        value = "x" * int(spec.get("size_mb", 2) * 1024 * 1024)
        path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n  namespace: default\n"
                        f"data:\n  blob: {value}\n")
    else:
        raise AssertionError(f"unknown generator {kind}")


# ------------------------------------------------------------------ via flux

def snapshot(sim: SimCluster) -> dict[str, Any]:
    out = {}
    for api_version, kind in LIVE_KINDS:
        for o in sim.list(api_version, kind):
            md = o["metadata"]
            out[f"{kind}/{md.get('namespace', '')}/{md['name']}"] = o
    return out


def ready_of(obj: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


def run_flux(name: str, e: dict[str, Any], tmp: Path) -> None:
    case = CORPUS / name
    sim = SimCluster(seed=1, controllers=False)
    seed = tmp / "seed"
    (seed / "apps").mkdir(parents=True)
    (seed / "apps" / "good.yaml").write_text(GOOD)
    if (case / "base").is_dir():
        shutil.copytree(case / "base", seed, dirs_exist_ok=True, symlinks=True)
    repo = ManifestRepo(tmp / "repo", log=sim.log, url=URL)
    repo.seed(seed, when=0)
    flux = FluxSystem(sim, sim.env, log=sim.log, seed=1, timings=FluxTimings.fixed(),
                      engine_timings=EngineTimings(api_call=0.0), workdir=tmp / "flux")
    flux.renderer = Renderer(timeout=20.0)
    flux.install()
    flux.add_remote(URL, repo)
    flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "fleet", "namespace": "flux-system"},
                "spec": {"interval": "1m", "url": URL, "ref": {"branch": "main"}}})
    ks_spec = {"interval": "10m", "retryInterval": "2m", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
               "path": "./apps", "prune": True}
    ks = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
          "metadata": {"name": "apps", "namespace": "flux-system"}, "spec": ks_spec}
    if e.get("age_key_secret"):
        from labkit.secrets.sops import AgeKey

        key = AgeKey.generate()
        sim.apply({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": e["age_key_secret"], "namespace": "flux-system"},
                   "data": {"age.agekey": base64.b64encode(key.keyfile().encode()).decode()}}, field_manager="kubectl")
    flux.apply(ks)
    sim.run(until=5)
    get_ks = lambda: sim.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "flux-system")  # noqa: E731
    assert ready_of(get_ks())["status"] == "True", ready_of(get_ks())
    good_revision = get_ks()["status"]["lastAppliedRevision"]
    before = snapshot(sim)

    # the bad change: a real clone, the case's files (symlinks too), commit, push
    if (case / "files").is_dir() or e.get("generate"):
        wc = repo.clone("dev")
        if (case / "files").is_dir():
            shutil.copytree(case / "files", wc.path, dirs_exist_ok=True, symlinks=True)
        if e.get("generate"):
            generate(e["generate"], wc.path)
        wc.commit(f"bad input: {name}", author="mallory", when=10)
        wc.push(when=10)
    if e.get("kustomization"):
        flux.apply({**ks, "spec": {**ks_spec, **e["kustomization"]}})
    sim.run(until=75)  # fetched at 62.0, built by 62.5

    obj = get_ks()
    ready = ready_of(obj)
    assert ready["status"] == "False", ready
    assert ready["reason"] == e["reason"], ready
    check_message(ready["message"], e)
    assert obj["status"]["lastAppliedRevision"] == good_revision
    assert snapshot(sim) == before  # nothing of the bad revision was applied; the good one is intact
    failures = [ev for ev in sim.log.filter(component="kustomize-controller", event="ReconciliationFailed")]
    assert failures and failures[-1].detail["reason"] == e["reason"]


# ------------------------------------------------------------------ via the other front doors

def run_flux_object(name: str, e: dict[str, Any], tmp: Path) -> None:
    sim = SimCluster(seed=1, controllers=False)
    flux = FluxSystem(sim, sim.env, log=sim.log, seed=1, workdir=tmp / "flux")
    flux.install()
    files = sorted(p for p in (CORPUS / name / "files").rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(CORPUS / name / "files").as_posix()
        with pytest.raises(LabkitError) as info:
            flux.apply(path.read_text(), file=rel)
        check_message(str(info.value), e)
    assert sim.list("kustomize.toolkit.fluxcd.io/v1", "Kustomization") == []
    assert sim.list("source.toolkit.fluxcd.io/v1", "GitRepository") == []


def run_cli(name: str, e: dict[str, Any], tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_HOME"}
    proc = subprocess.run([sys.executable, "-m", "labkit", *e["args"], "--out", str(tmp / "out")],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err  # one line
    check_message(err, e)
    assert not (tmp / "out").exists() or not any((tmp / "out").iterdir())  # nothing was run


def run_argo_hook(name: str, e: dict[str, Any]) -> None:
    hooks = importlib.import_module("labkit.argo.hooks")
    for path in sorted((CORPUS / name / "files").rglob("*.yaml")):
        rel = path.relative_to(CORPUS / name / "files").as_posix()
        with pytest.raises(LabkitError) as info:
            hooks.validate_hook(yaml.safe_load(path.read_text()), source=rel)
        check_message(str(info.value), e)


def run_argo_appset(name: str, e: dict[str, Any]) -> None:
    api = importlib.import_module("labkit.argo.api")
    template = importlib.import_module("labkit.argo.template")
    for path in sorted((CORPUS / name / "files").rglob("*.yaml")):
        rel = path.relative_to(CORPUS / name / "files").as_posix()
        spec = api.parse_applicationset(yaml.safe_load(path.read_text()), rel)
        with pytest.raises(LabkitError) as info:
            template.render_template(spec.template, e["params"], go=spec.go_template,
                                     options=spec.go_template_options)
        check_message(str(info.value), e)


# ------------------------------------------------------------------ via argo

ARGO_APP = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "apps", "namespace": "argocd"},
            "spec": {"project": "default", "source": {"repoURL": URL, "targetRevision": "HEAD", "path": "apps"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}


def argo_lab(name: str, tmp: Path) -> tuple[Any, Any, ManifestRepo, str]:
    """An automated Application over ``apps/`` (good.yaml plus the case's ``base/``), synced at 5."""
    from labkit.argo import ArgoSystem, ArgoTimings

    case = CORPUS / name
    sim = SimCluster(seed=1, controllers=False)
    seed = tmp / "seed"
    (seed / "apps").mkdir(parents=True)
    (seed / "apps" / "good.yaml").write_text(GOOD)
    if (case / "base").is_dir():
        shutil.copytree(case / "base", seed, dirs_exist_ok=True, symlinks=True)
    repo = ManifestRepo(tmp / "repo", log=sim.log, url=URL)
    repo.seed(seed, when=0)
    argo = ArgoSystem(sim, sim.env, log=sim.log, seed=1, timings=ArgoTimings.fixed(),
                      engine_timings=EngineTimings(api_call=0.0))
    argo.add_repo(repo)
    argo.enable_webhook(repo)
    argo.install()
    argo.apply(ARGO_APP, file="argocd/apps.yaml")
    sim.run(until=5)
    st = argo.status("apps")
    assert st["sync"]["status"] == "Synced" and st["operationState"]["phase"] == "Succeeded", st
    return sim, argo, repo, st["sync"]["revision"]


def run_argo(name: str, e: dict[str, Any], tmp: Path) -> None:
    case = CORPUS / name
    sim, argo, repo, good = argo_lab(name, tmp)
    before = snapshot(sim)
    wc = repo.clone("dev")
    if (case / "files").is_dir():
        shutil.copytree(case / "files", wc.path, dirs_exist_ok=True, symlinks=True)
    if e.get("generate"):
        generate(e["generate"], wc.path)
    wc.commit(f"bad input: {name}", author="mallory", when=10)
    wc.push(when=10)
    sim.run(until=60)  # the webhook arrives at 11: refresh, and an automated sync if the revision is good
    st = argo.status("apps")
    conditions = {c["type"]: c["message"] for c in st.get("conditions") or []}
    assert e["condition"] in conditions, conditions
    check_message(conditions[e["condition"]], e)
    assert snapshot(sim) == before  # nothing of the bad revision was applied; the good one is intact
    assert st["history"][-1]["revision"] == good
    started = [ev for ev in sim.log.filter(component="argocd-application-controller", event="OperationStarted")
               if ev.time > 10]
    assert started == []


def run_argo_object(name: str, e: dict[str, Any], tmp: Path) -> None:
    sim, argo, repo, good = argo_lab(name, tmp)
    before = snapshot(sim)
    apps_before = sim.list("argoproj.io/v1alpha1", "Application", "argocd")
    files = sorted(p for p in (CORPUS / name / "files").rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(CORPUS / name / "files").as_posix()
        with pytest.raises(LabkitError) as info:
            argo.apply(path.read_text(), file=rel)
        check_message(str(info.value), e)
    sim.run(until=60)
    assert sim.list("argoproj.io/v1alpha1", "ApplicationSet", "argocd") == []
    assert [a["metadata"]["name"] for a in sim.list("argoproj.io/v1alpha1", "Application", "argocd")] == \
        [a["metadata"]["name"] for a in apps_before]
    assert snapshot(sim) == before
    st = argo.status("apps")
    assert st["sync"]["status"] == "Synced" and st["history"][-1]["revision"] == good


def run_secrets_guard(name: str, e: dict[str, Any], tmp: Path) -> None:
    """The plaintext guard refuses the commit before anything reaches the remote."""
    guard = importlib.import_module("labkit.secrets.guard")
    root = CORPUS / name / "files"
    src = tmp / "seed"
    (src / "apps").mkdir(parents=True)
    (src / "apps" / "good.yaml").write_text(GOOD)
    repo = ManifestRepo(tmp / "repo", url=URL)
    repo.seed(src, when=0)
    head = repo.head()
    changes = {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
    with pytest.raises(LabkitError) as info:
        guard.guarded_commit(repo, changes, message="add db credentials", author="mallory", when=5)
    check_message(str(info.value), e)
    assert repo.head() == head  # nothing was committed


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    e = load(name)
    requires(e)
    mark(e, request)
    via = e["via"]
    RUN_COUNTS[f"bad-input corpus cases (of {len(CASES)})"] += 1
    if via == "flux":
        run_flux(name, e, tmp_path)
    elif via == "flux-object":
        run_flux_object(name, e, tmp_path)
    elif via == "scenario-cli":
        run_cli(name, e, tmp_path)
    elif via == "argo":
        run_argo(name, e, tmp_path)
    elif via == "argo-object":
        run_argo_object(name, e, tmp_path)
    elif via == "argo-hook":
        run_argo_hook(name, e)
    elif via == "argo-appset":
        run_argo_appset(name, e)
    elif via == "secrets-guard":
        run_secrets_guard(name, e, tmp_path)
