"""KWOK Stage definitions: structure, and the image-missing selector (checked with a real jq where installed)."""
import json
import shutil
import subprocess

import pytest
import yaml

from labkit.kube import stages as st


def by_name(opts=None):
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(st.stages_yaml(opts))}


def test_yaml_is_kwoks_documented_format():
    docs = by_name()
    assert list(docs) == ["node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-image-pull-failed",
                          "pod-image-pull-backoff", "pod-image-pull-retry", "pod-complete", "pod-fail", "pod-delete",
                          "metrics-resource", "usage-from-annotation"]
    for name, d in docs.items():
        assert d["apiVersion"] == "kwok.x-k8s.io/v1alpha1"
        if d["kind"] == "Stage":
            spec = d["spec"]
            assert spec["resourceRef"]["apiGroup"] == "v1" and spec["resourceRef"]["kind"] in ("Node", "Pod")
            for e in spec["selector"]["matchExpressions"]:
                assert e["operator"] in ("In", "NotIn", "Exists", "DoesNotExist")
                assert ("values" in e) == (e["operator"] in ("In", "NotIn"))
    assert docs["metrics-resource"]["kind"] == "Metric"
    assert docs["usage-from-annotation"]["kind"] == "ClusterResourceUsage"
    assert "kwok.x-k8s.io/usage-cpu" in json.dumps(docs["usage-from-annotation"])


def test_ready_delay_has_jitter_and_an_annotation_override():
    t = st.StageTimings(ready_ms=1500, ready_jitter_ms=4000)
    delay = by_name(st.StageOptions(timings=t))["pod-ready"]["spec"]["delay"]
    assert delay["durationMilliseconds"] == 1500 and delay["jitterDurationMilliseconds"] == 4000
    assert delay["durationFrom"] == {"expressionFrom": '.metadata.annotations["labkit.dev/ready-delay"]'}


def test_metrics_can_be_left_out():
    names = list(by_name(st.StageOptions(metrics=False)))
    assert "metrics-resource" not in names and "usage-from-annotation" not in names


def test_pull_failure_uses_containerds_not_found_text_and_backoff_wraps_it():
    docs = by_name()
    failed = docs["pod-image-pull-failed"]["spec"]["next"]["statusTemplate"]
    backoff = docs["pod-image-pull-backoff"]["spec"]["next"]["statusTemplate"]
    assert "reason: ErrImagePull" in failed and "failed to pull and unpack image" in failed
    assert "reason: ImagePullBackOff" in backoff and 'Back-off pulling image \\"%s\\": ErrImagePull: %s' in backoff
    assert docs["pod-image-pull-failed"]["spec"]["next"]["event"] == {
        "type": "Warning", "reason": "Failed", "message": "Error: ErrImagePull"}


@pytest.mark.parametrize("ref,canonical", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("web:v9", "docker.io/library/web:v9"),
    ("team/web:1.0", "docker.io/team/web:1.0"),
    ("ghcr.io/stefanprodan/podinfo:6.5.0", "ghcr.io/stefanprodan/podinfo:6.5.0"),
    ("localhost:5000/web", "localhost:5000/web:latest"),
    ("web@sha256:abc", "docker.io/library/web@sha256:abc"),
])
def test_canonical_image(ref, canonical):
    assert st.canonical_image(ref) == canonical


def pod(*images):
    return {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}}


CASES = [
    (pod("web:v1"), "present"),
    (pod("web:missing-1"), "missing"),
    (pod("ghcr.io/x/web:does-not-exist"), "missing"),
    (pod("web:v1", "sidecar:nonexistent"), "missing"),
    (pod("web:v9"), "missing"),  # listed
    (pod("docker.io/library/web:v9"), "missing"),  # listed, canonical form
    (pod("web:v10"), "present"),
    (pod("localhost:5000/missing"), "present"),  # "missing" is the repository here, not the tag
]
OPTS = st.StageOptions(missing_images=["web:v9"])


@pytest.mark.parametrize("obj,expected", CASES)
def test_python_twin_of_the_selector(obj, expected):
    got = any(st.is_missing(c["image"], OPTS) for c in obj["spec"]["containers"])
    assert ("missing" if got else "present") == expected


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed (KWOK evaluates the same expression with gojq)")
@pytest.mark.parametrize("obj,expected", CASES)
def test_jq_selector_expression(obj, expected):
    out = subprocess.run(["jq", "-r", st.missing_expression(OPTS)], input=json.dumps(obj), capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == expected
