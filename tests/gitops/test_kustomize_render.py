"""Rendering with real kustomize: output, Flux's generated kustomization, errors, timeouts, confinement."""
from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from labkit.core.errors import LabkitError
from labkit.gitops import (
    BuildError,
    KubectlNotFoundError,
    ManifestError,
    PathConfinementError,
    PathNotFoundError,
    Renderer,
    generate_kustomization,
    load_manifests,
    parse_manifests,
    render,
    render_documents,
)
from labkit.gitops.render import RenderTimeoutError


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(objs):
    return sorted((o["kind"], o["metadata"]["name"]) for o in objs)


# ----------------------------------------------------------------------------- real kustomize

def test_render_overlay_with_real_kustomize(tmp_path: Path):
    base = tmp_path / "base"
    write(base / "cm.yaml", CM.format(name="settings", value="base"))
    write(base / "kustomization.yaml", "resources:\n- cm.yaml\n")
    write(tmp_path / "dev" / "kustomization.yaml",
          "namespace: dev\nnamePrefix: dev-\nresources:\n- ../base\n"
          "patches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: settings\n"
          "    data:\n      key: overlay\n")
    objs = render(tmp_path / "dev")
    assert objs == [{"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "dev-settings", "namespace": "dev"}, "data": {"key": "overlay"}}]


def test_render_documents_are_one_text_per_object(tmp_path: Path):
    write(tmp_path / "a.yaml", CM.format(name="a", value="1") + "---\n" + CM.format(name="b", value="2"))
    docs = render_documents(tmp_path)
    assert len(docs) == 2 and all("kind: ConfigMap" in d for d in docs)


def test_timestamps_stay_strings(tmp_path: Path):
    write(tmp_path / "cm.yaml", CM.format(name="d", value="2024-01-01"))
    value = render(tmp_path)[0]["data"]["key"]
    # kustomize itself rewrites an unquoted date (to 2024-01-01T00:00:00Z); we keep whatever
    # it printed as a string instead of turning it into a datetime
    assert isinstance(value, str) and value.startswith("2024-01-01")
    assert parse_manifests("when: 2024-01-01\n") == [{"when": "2024-01-01"}]


# ----------------------------------------------------------------------------- generated kustomization

def test_plain_directory_gets_fluxs_generated_kustomization(tmp_path: Path):
    write(tmp_path / "b.yaml", CM.format(name="b", value="1"))
    write(tmp_path / "a.yml", CM.format(name="a", value="1"))
    write(tmp_path / "notes.txt", "not yaml: [")
    write(tmp_path / "nested" / "deeper" / "c.yaml", CM.format(name="c", value="1"))
    write(tmp_path / "app" / "kustomization.yaml", "resources:\n- d.yaml\n")
    write(tmp_path / "app" / "d.yaml", CM.format(name="d", value="1"))
    write(tmp_path / "app" / "ignored.yaml", CM.format(name="ignored", value="1"))  # not listed by app/

    import yaml

    generated = yaml.safe_load(generate_kustomization(tmp_path))
    assert generated == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["./a.yml", "./app", "./b.yaml", "./nested/deeper/c.yaml"],
    }
    assert names(render(tmp_path)) == [("ConfigMap", n) for n in ("a", "b", "c", "d")]
    assert not (tmp_path / "kustomization.yaml").exists()  # removed after the build, as Flux does


def test_generation_rejects_non_kubernetes_yaml(tmp_path: Path):
    write(tmp_path / "ok.yaml", CM.format(name="ok", value="1"))
    bad = write(tmp_path / "values.yaml", "replicaCount: 3\n")
    with pytest.raises(BuildError) as err:
        render(tmp_path)
    assert f"failed to decode Kubernetes YAML from {bad}" in err.value.kustomize_message
    assert not (tmp_path / "kustomization.yaml").exists()


def test_existing_kustomization_is_not_regenerated(tmp_path: Path):
    write(tmp_path / "Kustomization", "resources:\n- a.yaml\n")
    write(tmp_path / "a.yaml", CM.format(name="a", value="1"))
    write(tmp_path / "b.yaml", CM.format(name="b", value="1"))
    assert generate_kustomization(tmp_path) is None
    assert names(render(tmp_path)) == [("ConfigMap", "a")]


# ----------------------------------------------------------------------------- errors

def test_kustomize_error_is_a_build_error_with_kustomizes_message(tmp_path: Path):
    d = tmp_path / "broken"
    write(d / "kustomization.yaml", "resources:\n- missing.yaml\n")
    with pytest.raises(BuildError) as err:
        render(d)
    e = err.value
    assert isinstance(e, LabkitError)
    assert e.path == str(d)
    assert e.kustomize_message.startswith("accumulating resources:")
    assert "missing.yaml" in e.kustomize_message
    assert not e.kustomize_message.startswith("error:")
    assert e.flux_message == "kustomize build failed: " + e.kustomize_message
    assert str(d) in str(e)


def test_timeout_kills_a_hanging_kustomize(tmp_path: Path):
    fake = tmp_path / "bin" / "kubectl"
    write(fake, f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    write(tmp_path / "m" / "cm.yaml", CM.format(name="a", value="1"))
    start = time.monotonic()
    with pytest.raises(RenderTimeoutError) as err:
        render(tmp_path / "m", timeout=0.5, kubectl=fake)
    assert time.monotonic() - start < 10
    assert "timed out after 0.5s" in str(err.value)


def test_missing_kubectl_is_a_clear_error(tmp_path: Path, monkeypatch):
    write(tmp_path / "cm.yaml", CM.format(name="a", value="1"))
    with pytest.raises(KubectlNotFoundError):
        render(tmp_path, kubectl=tmp_path / "nope" / "kubectl")
    monkeypatch.setenv("LABKIT_KUBECTL", str(tmp_path / "also-nope"))
    with pytest.raises(KubectlNotFoundError):
        render(tmp_path)


# ----------------------------------------------------------------------------- confinement

@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    write(root / "apps" / "base" / "cm.yaml", CM.format(name="a", value="1"))
    write(root / "apps" / "base" / "kustomization.yaml", "resources:\n- cm.yaml\n")
    write(root / "apps" / "dev" / "kustomization.yaml", "resources:\n- ../base\n")
    write(tmp_path / "secret.yaml", CM.format(name="outside", value="stolen"))
    return root


def test_confined_render_of_an_overlay(checkout: Path):
    assert names(render("./apps/dev", root=checkout)) == [("ConfigMap", "a")]


@pytest.mark.parametrize("path", ["../..", "apps/../../", "../secret.yaml"])
def test_dotdot_escape_is_rejected(checkout: Path, path: str):
    with pytest.raises(PathConfinementError) as err:
        render(path, root=checkout)
    assert err.value.path == path and path in str(err.value)


def test_absolute_path_outside_is_rejected(checkout: Path, tmp_path: Path):
    with pytest.raises(PathConfinementError):
        render(str(tmp_path), root=checkout)
    assert names(render(str(checkout / "apps" / "dev"), root=checkout)) == [("ConfigMap", "a")]


def test_symlinked_directory_pointing_outside_is_rejected(checkout: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    write(outside / "cm.yaml", CM.format(name="x", value="1"))
    (checkout / "apps" / "evil").symlink_to(outside)
    with pytest.raises(PathConfinementError):
        render("apps/evil", root=checkout)


def test_symlinked_file_pointing_outside_is_rejected(checkout: Path, tmp_path: Path):
    (checkout / "apps" / "base" / "extra.yaml").symlink_to(tmp_path / "secret.yaml")
    write(checkout / "apps" / "base" / "kustomization.yaml", "resources:\n- cm.yaml\n- extra.yaml\n")
    with pytest.raises(PathConfinementError) as err:
        render("apps/dev", root=checkout)  # reached through ../base
    assert "apps/base/extra.yaml" in str(err.value)


def test_kustomization_reference_outside_is_rejected(checkout: Path):
    write(checkout / "apps" / "dev" / "kustomization.yaml", "resources:\n- ../base\n- ../../../secret.yaml\n")
    with pytest.raises(PathConfinementError) as err:
        render("apps/dev", root=checkout)
    assert "apps/dev/kustomization.yaml" in str(err.value) and "../../../secret.yaml" in str(err.value)


def test_symlink_inside_the_root_is_fine(checkout: Path):
    (checkout / "apps" / "alias").symlink_to("dev")
    assert names(render("apps/alias", root=checkout)) == [("ConfigMap", "a")]


def test_missing_path_uses_fluxs_message(checkout: Path):
    with pytest.raises(PathNotFoundError) as err:
        render("./apps/prod", root=checkout)
    assert err.value.flux_message == (
        f"kustomization path not found: stat {checkout.resolve() / 'apps' / 'prod'}: no such file or directory"
    )


# ----------------------------------------------------------------------------- cache

def test_renderer_caches_by_revision_key(checkout: Path):
    r = Renderer()
    first = r.render("apps/dev", root=checkout, key="rev1")
    first[0]["metadata"]["name"] = "mutated"
    second = r.render("apps/dev", root=checkout, key="rev1")
    assert second[0]["metadata"]["name"] == "a"  # fresh copy
    assert (r.misses, r.hits) == (1, 1)
    r.render("apps/dev", root=checkout, key="rev2")
    assert r.misses == 2
    write(checkout / "apps" / "dev" / "kustomization.yaml", "resources:\n- missing.yaml\n")
    for _ in range(2):
        with pytest.raises(BuildError):
            r.render("apps/dev", root=checkout, key="bad")
    assert r.misses == 3  # the failure is remembered for that revision


# ----------------------------------------------------------------------------- manifest files

def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    f = write(tmp_path / "deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n")
    with pytest.raises(ManifestError) as err:
        load_manifests(f)
    assert err.value.file == str(f)
    assert err.value.line == 5  # the unterminated flow sequence is detected at end of input
    assert str(f) in str(err.value) and "line 5" in str(err.value)


def test_yaml_error_line_for_bad_indentation(tmp_path: Path):
    f = write(tmp_path / "x.yaml", "a: 1\nb:\n  c: 2\n d: 3\n")
    with pytest.raises(ManifestError) as err:
        load_manifests(f)
    assert err.value.line == 4


def test_duplicate_keys_are_rejected():
    with pytest.raises(ManifestError) as err:
        parse_manifests("kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", source="cm.yaml")
    assert err.value.line == 4
    assert 'mapping key "name" already defined at line 3' in str(err.value)


def test_parse_manifests_skips_empty_documents():
    assert parse_manifests("---\n---\nkind: A\n---\n") == [{"kind": "A"}]
    with pytest.raises(ManifestError):
        parse_manifests("- just\n- a list\n", source="list.yaml")


# ----------------------------------------------------------------------------- Flux spec overrides

def test_flux_spec_overrides_are_applied_and_the_file_restored(checkout: Path):
    kfile = checkout / "apps" / "dev" / "kustomization.yaml"
    before = kfile.read_text()
    spec = {
        "targetNamespace": "team-a",
        "namePrefix": "a-",
        "patches": [{"patch": "- op: add\n  path: /data/extra\n  value: patched\n",
                     "target": {"kind": "ConfigMap", "name": "a"}}],
        "images": [{"name": "unused", "newTag": "1.0.0"}],
    }
    objs = render("apps/dev", root=checkout, overrides=spec)
    assert objs == [{"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "a-a", "namespace": "team-a"},
                     "data": {"key": 1, "extra": "patched"}}]
    assert kfile.read_text() == before


def test_flux_overrides_on_a_generated_kustomization(tmp_path: Path):
    write(tmp_path / "cm.yaml", CM.format(name="plain", value="v"))
    objs = render(tmp_path, overrides={"targetNamespace": "ns1"})
    assert objs[0]["metadata"] == {"name": "plain", "namespace": "ns1"}
    assert not (tmp_path / "kustomization.yaml").exists()


def test_flux_components_must_be_local_and_may_be_missing(checkout: Path):
    with pytest.raises(BuildError, match="component path '/abs' must be local and relative"):
        render("apps/dev", root=checkout, overrides={"components": ["/abs"]})
    with pytest.raises(PathConfinementError):
        render("apps/dev", root=checkout, overrides={"components": ["../../../x"]})
    ok = render("apps/dev", root=checkout, overrides={"components": ["../missing"], "ignoreMissingComponents": True})
    assert names(ok) == [("ConfigMap", "a")]


def test_renderer_cache_key_includes_overrides(checkout: Path):
    r = Renderer()
    a = r.render("apps/dev", root=checkout, key="rev", overrides={"targetNamespace": "x"})
    b = r.render("apps/dev", root=checkout, key="rev", overrides={"targetNamespace": "y"})
    assert (a[0]["metadata"]["namespace"], b[0]["metadata"]["namespace"]) == ("x", "y")
    assert r.misses == 2
