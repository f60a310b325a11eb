"""Flux postBuild substitution: envsubst forms, strict mode texts, opt-out, variable precedence."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from labkit.gitops import SubstitutionError, collect_variables, envsubst, gvk_string, render_documents, substitute
from labkit.gitops.substitute import EnvsubstError


def cm(data: dict, name: str = "app", **metadata) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}, "data": data}


def one(objs, variables, **kw):
    return substitute(objs, variables, **kw)[0]


# ----------------------------------------------------------------------------- expansion forms

def test_defaults():
    obj = cm({"a": "${missing:=fallback}", "b": "${missing:-dash}", "c": "${missing=eq}",
              "d": "${env:=dev}", "e": "${empty:=filled}"})
    out = one([obj], {"env": "prod", "empty": ""})
    assert out["data"] == {"a": "fallback", "b": "dash", "c": "eq", "d": "prod", "e": "filled"}


def test_dollar_without_braces_is_left_alone_and_double_dollar_escapes():
    obj = cm({"script": "echo $HOME and $region", "literal": "$${region}", "mixed": "${region}-$region"})
    out = one([obj], {"region": "eu-west-1", "HOME": "/root"})
    assert out["data"] == {"script": "echo $HOME and $region", "literal": "${region}", "mixed": "eu-west-1-$region"}


# Expected values from fluxcd/pkg envsubst/eval_test.go (TestExpand), which cite tldp.org.
UPSTREAM_CASES = [
    ({"var01": "abcdEFGH28ij"}, "${#var01}", "12"),
    ({"var01": "abcdEFGH28ij"}, "${var01^}", "AbcdEFGH28ij"),
    ({"var01": "abcdEFGH28ij"}, "${var01^^}", "ABCDEFGH28IJ"),
    ({"var01": "ABCDEFGH28IJ"}, "${var01,}", "aBCDEFGH28IJ"),
    ({"var01": "ABCDEFGH28IJ"}, "${var01,,}", "abcdefgh28ij"),
    ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11}", "ideas/thoughts.for.today"),
    ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11:5}", "ideas"),
    ({"var": "abc"}, "${var=xyz}", "abc"),
    ({}, "${var=xyz}", "xyz"),
    ({"default_var": "foo"}, "something ${var=${default_var}}", "something foo"),
    ({"default_var": "foo1"}, "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
    ({"stringZ": "somevalue"}, "${stringZ/#/prefix-}", "prefix-somevalue"),
    ({"stringZ": "somevalue"}, "${stringZ/%/-suffix}", "somevalue-suffix"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
    ({"filename": "bash.string.txt"}, "${filename#*.}", "string.txt"),
    ({"filename": "path/to/file"}, "${filename#*/}", "to/file"),
    ({"filename": "bash.string.txt"}, "${filename##*.}", "txt"),
    ({"filename": "path/to/file"}, "${filename##*/}", "file"),
    ({"filename": "bash.string.txt"}, "${filename%.*}", "bash.string"),
    ({"filename": "bash.string.txt"}, "${filename%%.*}", "bash"),
    ({"var01": "abcdEFGH28ij"}, "${var=${var01^^}}", "ABCDEFGH28IJ"),
    ({"var01": "abcdEFGH28ij"}, "$${var01}", "${var01}"),
    ({"var01": "abcdEFGH28ij"}, "some text ${var01}$${var$${var01}$var01${var01}",
     "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij"),
    ({"default_var": "foo"}, "something $${var=${default_var}}", "something ${var=foo}"),
    ({"stringZ": "foo/bar"}, r"${stringZ/\//-}", "foo-bar"),
    ({"stringZ": "foo/bar/baz"}, r"${stringZ//\//-}", "foo-bar-baz"),
    ({"default_var": "foo"}, "\\\\something ${var=${default_var}}", "\\\\something foo"),
    ({"stringZ": "foo.bar"}, "${stringZ/./}", "foobar"),
]


@pytest.mark.parametrize("params, text, expected", UPSTREAM_CASES)
def test_envsubst_matches_upstream_cases(params, text, expected):
    assert envsubst(text, lambda name: (params.get(name, ""), True)) == expected


@pytest.mark.parametrize("text", ["${missing}", "${#missing}", "${missing^^}", "${missing:0:2}",
                                  "${missing/a/b}", "${missing%%x}"])
def test_strict_mode_counts_transformations_as_references(text):
    with pytest.raises(EnvsubstError, match='variable not set \\(strict mode\\): "missing"'):
        envsubst(text, lambda name: ("", False))


def test_dash_default_without_colon_is_a_parse_error_in_the_fork():
    # the fork's README lists ${var-default}, its parser has no branch for it
    with pytest.raises(EnvsubstError, match="missing closing brace"):
        envsubst("${var-default}", lambda name: ("", True))


# ----------------------------------------------------------------------------- strict mode

def test_strict_missing_variable_fails_with_fluxs_text():
    obj = cm({"region": "${cluster_region}"}, name="cluster-info")
    with pytest.raises(SubstitutionError) as err:
        substitute([obj], {"cluster_env": "prod"}, source="./apps/prod")
    assert err.value.flux_message == (
        "post build failed for 'ConfigMap.v1.[noGrp]/cluster-info': envsubst error: "
        'variable substitution failed: variable not set (strict mode): "cluster_region"'
    )
    assert err.value.file == "./apps/prod"


def test_gvk_string_is_kustomizes_format():
    assert gvk_string({"apiVersion": "apps/v1", "kind": "Deployment"}) == "Deployment.v1.apps"
    assert gvk_string({"apiVersion": "v1", "kind": "ConfigMap"}) == "ConfigMap.v1.[noGrp]"


def test_non_strict_missing_variable_becomes_empty():
    out = one([cm({"region": "x${cluster_region}y"})], {"cluster_env": "prod"}, strict=False)
    assert out["data"]["region"] == "xy"


def test_no_variables_means_no_substitution_at_all():
    obj = cm({"a": "${missing}", "b": "${x:=default}"})
    assert substitute([obj], {}) == [obj]  # even strict mode does not fail, defaults are not applied


def test_invalid_variable_name_fails():
    with pytest.raises(SubstitutionError, match="'cluster-env' var name is invalid, must match"):
        substitute([cm({"a": "b"})], {"cluster-env": "prod"})


def test_disabled_annotation_or_label_skips_the_object():
    ann = cm({"dash": "${not_a_flux_var}"}, name="grafana",
             annotations={"kustomize.toolkit.fluxcd.io/substitute": "disabled"})
    lab = cm({"dash": "${also_not}"}, name="other", labels={"kustomize.toolkit.fluxcd.io/substitute": "disabled"})
    normal = cm({"env": "${env}"}, name="normal")
    out = substitute([ann, lab, normal], {"env": "prod"})
    assert out[0]["data"] == {"dash": "${not_a_flux_var}"}
    assert out[1]["data"] == {"dash": "${also_not}"}
    assert out[2]["data"] == {"env": "prod"}


def test_input_objects_are_not_mutated():
    obj = cm({"env": "${env}"})
    substitute([obj], {"env": "prod"})
    assert obj["data"]["env"] == "${env}"


def test_substitution_is_textual_so_quoting_decides_the_type():
    docs = [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: ${replicas}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  replicas: \"${replicas}\"\n",
    ]
    out = substitute(docs, {"replicas": "3"})
    assert out[0]["spec"]["replicas"] == 3
    assert out[1]["data"]["replicas"] == "3"


def test_substituted_text_that_is_not_yaml_fails():
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  v: ${v}\n"
    with pytest.raises(SubstitutionError, match="post build failed for 'ConfigMap.v1.\\[noGrp\\]/b': envsubst error: YAMLToJSON"):
        substitute([doc], {"v": "[unclosed"})


def test_values_lose_newlines():
    assert one([cm({"a": "${v}"})], {"v": "line1\nline2"})["data"]["a"] == "line1line2"


def test_on_real_kustomize_output(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n- deploy.yaml\n")
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    env: ${cluster_env:=dev}\n"
        "spec:\n  replicas: ${replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n"
        "      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n"
        "        image: nginx:${tag}\n")
    out = substitute(render_documents(tmp_path), {"replicas": "2", "tag": "1.27.0"})[0]
    assert out["metadata"]["labels"]["env"] == "dev"
    assert out["spec"]["replicas"] == 2
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27.0"


# ----------------------------------------------------------------------------- variables

def secret(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_collect_variables_order_inline_wins():
    sources = [
        cm({"region": "eu-west-1", "env": "from-cm", "tier": "gold"}, name="cluster-vars"),
        secret("cluster-secrets", {"env": "from-secret", "token": "t0k3n\n"}),
    ]
    got = collect_variables({"env": "inline"}, sources)
    assert got == {"region": "eu-west-1", "env": "inline", "tier": "gold", "token": "t0k3n"}
    assert collect_variables(None, sources)["env"] == "from-secret"  # later source overwrites earlier


def test_optional_missing_source_is_skipped_required_fails():
    ref_opt = {"kind": "ConfigMap", "name": "optional-vars", "optional": True}
    ref_req = {"kind": "ConfigMap", "name": "cluster-vars"}
    assert collect_variables({"a": "1"}, [(ref_opt, None)]) == {"a": "1"}
    with pytest.raises(SubstitutionError) as err:
        collect_variables({"a": "1"}, [(ref_req, None)])
    assert err.value.flux_message == "substitute from 'ConfigMap/cluster-vars' error: configmaps \"cluster-vars\" not found"
    with pytest.raises(SubstitutionError, match="secrets \"s\" not found"):
        collect_variables(None, [({"kind": "Secret", "name": "s"}, None)])
