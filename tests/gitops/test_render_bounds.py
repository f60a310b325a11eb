"""Render paths read repository YAML in bounded time and memory, and read what kustomize prints."""
from __future__ import annotations

import pytest

from labkit.gitops.render import BuildError, ManifestError, parse_manifests, render

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi"))


def test_a_plain_manifest_alias_bomb_is_refused_before_it_expands():
    with pytest.raises(ManifestError) as err:
        parse_manifests(BOMB, source="apps/bomb.yaml")
    assert str(err.value).startswith("apps/bomb.yaml")


def test_a_manifest_over_the_document_limit_is_refused_naming_it(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "many.yaml").write_text("".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
                                           for i in range(10_001)))
    with pytest.raises(BuildError) as err:
        render("app", root=tmp_path)
    assert "failed to decode Kubernetes YAML from" in str(err.value) and "app/many.yaml" in str(err.value)
    assert "more than 10,000 YAML documents" in str(err.value)


def test_a_plain_equals_sign_from_kustomize_is_the_string_it_is(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: eq\ndata:\n  op: \"=\"\n")
    (app / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    [cm] = render("app", root=tmp_path)
    assert cm["data"]["op"] == "="


def test_a_repository_budget_of_yaml_bytes_is_taken_before_a_file_is_scanned():
    from labkit.gitops.yamlbounds import YamlBudget, YamlLimitError, load_documents

    budget = YamlBudget(max_bytes=100)
    load_documents("a: 1\n" * 10, "one.yaml", budget=budget)
    with pytest.raises(YamlLimitError) as err:
        load_documents("b: 2\n" * 20, "two.yaml", budget=budget)
    assert str(err.value).startswith("two.yaml: ") and "exceeds 100 bytes" in str(err.value)
