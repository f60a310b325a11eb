"""Bad manifests: one clear message naming the file and the field, nothing written to the store."""
import pytest

from labkit.core.errors import LabkitError
from labkit.app.manifests import apply_manifests
from labkit.sim import SimCluster

GOOD = """apiVersion: v1
kind: ConfigMap
metadata:
  name: first
data:
  a: b
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""


@pytest.fixture
def cluster():
    return SimCluster(seed=0, controllers=False)


def write(tmp_path, text, name="bad.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_type_error_names_file_and_field_and_applies_nothing(cluster, tmp_path):
    p = write(tmp_path, GOOD + "---\n" + DEPLOY.format(replicas='"three"'))
    before = cluster.store.writes
    with pytest.raises(LabkitError) as err:
        apply_manifests(cluster, p)
    e = err.value
    assert e.file == str(p) and e.field == "spec.replicas"
    assert str(e) == (f"{p}: spec.replicas: Deployment/web: failed to create typed patch object (default/web; "
                      "apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string; "
                      "nothing was applied")
    assert cluster.store.writes == before
    assert cluster.get("v1", "ConfigMap", "first") is None


def test_unknown_kind_names_the_kind(cluster, tmp_path):
    p = write(tmp_path, GOOD + "---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    with pytest.raises(LabkitError) as err:
        apply_manifests(cluster, p)
    assert err.value.field == "kind"
    assert 'no matches for kind "Widget" in version "example.com/v1"' in str(err.value)
    assert cluster.get("v1", "ConfigMap", "first") is None


def test_validation_error_names_the_cause_field(cluster, tmp_path):
    p = write(tmp_path, DEPLOY.format(replicas=-1))
    with pytest.raises(LabkitError) as err:
        apply_manifests(cluster, p)
    assert err.value.field == "spec.replicas"
    assert "must be greater than or equal to 0" in str(err.value)


def test_yaml_syntax_error_names_file_and_line(cluster, tmp_path):
    p = write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    with pytest.raises(LabkitError) as err:
        apply_manifests(cluster, p)
    assert str(p) in str(err.value) and "line" in str(err.value)


def test_missing_kind(cluster, tmp_path):
    p = write(tmp_path, "apiVersion: v1\nmetadata: {name: x}\n")
    with pytest.raises(LabkitError) as err:
        apply_manifests(cluster, p)
    assert err.value.field == "kind" and err.value.file == str(p)


def test_good_file_applies_everything(cluster, tmp_path):
    p = write(tmp_path, GOOD + "---\n" + DEPLOY.format(replicas=2), "good.yaml")
    cs = apply_manifests(cluster, p)
    assert cs.to_map() == {"ConfigMap/first": "created", "Deployment/web": "created"}
    assert cluster.get("apps/v1", "Deployment", "web")["spec"]["replicas"] == 2
