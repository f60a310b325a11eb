"""normalize: server-field stripping, subset diff with Kubernetes list semantics
(list-map keys from k8s.io/api core/v1 ``patchMergeKey`` / ``listMapKey`` markers),
quantities (k8s.io/apimachinery ``pkg/api/resource`` grammar), RFC 6901 pointers,
and selectors/ignore rules (fluxcd/pkg ``ssa/jsondiff/selector.go``)."""
from __future__ import annotations

import copy
from fractions import Fraction

import pytest

from labkit.engine.normalize import (
    IgnoreRule,
    Selector,
    apply_ignore,
    apply_ignore_rules,
    changed_paths,
    escape_pointer_token,
    get_pointer,
    is_subset,
    make_pointer,
    match_label_selector,
    parse_pointer,
    parse_quantity,
    quantities_equal,
    remove_pointer,
    strip_server_fields,
)
from labkit.core.errors import LabkitError


def deployment(**container):
    c = {"name": "web", "image": "web:1.0"}
    c.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [c]}}},
    }


def live_of(desired):
    live = copy.deepcopy(desired)
    live["metadata"].update(
        uid="u-1",
        resourceVersion="42",
        generation=3,
        creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "kustomize-controller"}],
    )
    live["status"] = {"replicas": 2}
    live["spec"]["revisionHistoryLimit"] = 10  # a server default
    return live


# ----------------------------------------------------------------- strip_server_fields


def test_strip_server_fields():
    live = live_of(deployment())
    out = strip_server_fields(live)
    assert "status" not in out
    assert set(out["metadata"]) == {"name", "namespace", "labels"}
    assert "uid" in live["metadata"]  # the input is not modified


# ----------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    "text, value",
    [
        ("100m", Fraction(1, 10)),
        ("0.1", Fraction(1, 10)),
        ("1", Fraction(1)),
        ("1Gi", Fraction(2**30)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1G", Fraction(10**9)),
        ("1k", Fraction(1000)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("-2", Fraction(-2)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("250u", Fraction(250, 10**6)),
        (2, Fraction(2)),
        (0.5, Fraction(1, 2)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1Qi", "1 Gi", "--1", True, None])
def test_parse_quantity_errors(bad):
    with pytest.raises(LabkitError):
        parse_quantity(bad)


def test_quantities_equal():
    assert quantities_equal("100m", "0.1")
    assert quantities_equal(1, "1000m")
    assert quantities_equal("1Gi", "1024Mi")
    assert not quantities_equal("1G", "1Gi")
    assert not quantities_equal("x", "x")


# ----------------------------------------------------------------- changed_paths / is_subset


def test_identical_modulo_server_fields_is_subset():
    d = deployment()
    assert is_subset(d, live_of(d))
    assert changed_paths(d, live_of(d)) == []


def test_scalar_change():
    d = deployment()
    live = live_of(d)
    live["spec"]["replicas"] = 5
    assert changed_paths(d, live) == ["spec.replicas"]


def test_missing_field_in_live():
    d = deployment(command=["serve"])
    live = live_of(deployment())
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].command"]


def test_keys_with_dots_are_quoted():
    d = deployment()
    live = live_of(d)
    live["metadata"]["labels"]["app.kubernetes.io/name"] = "other"
    assert changed_paths(d, live) == ['metadata.labels["app.kubernetes.io/name"]']


def test_containers_matched_by_name_not_position():
    d = deployment()
    d["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"].reverse()
    assert is_subset(d, live)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "proxy:2"
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=sidecar].image"]


def test_new_container_is_reported_by_key():
    d = deployment()
    d["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    live = live_of(deployment())
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=sidecar]"]


def test_extra_live_container_is_not_a_change():
    live = live_of(deployment())
    live["spec"]["template"]["spec"]["containers"].append({"name": "injected", "image": "mesh:1"})
    assert is_subset(deployment(), live)


def test_env_by_name():
    d = deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "B", "value": "2"}, {"name": "A", "value": "x"}]
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].env[name=A].value"]


def test_volume_mounts_keyed_by_mount_path():
    d = deployment(volumeMounts=[{"name": "data", "mountPath": "/a"}, {"name": "data", "mountPath": "/b", "subPath": "b"}])
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].reverse()
    assert is_subset(d, live)
    live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "c"
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].volumeMounts[mountPath=/b].subPath"]


def test_container_ports_keyed_by_port_and_protocol_with_tcp_default():
    d = deployment(ports=[{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}])
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 8080, "protocol": "TCP"},
    ]
    assert is_subset(d, live)
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].ports[containerPort=53,protocol=UDP]"]


def test_service_ports_keyed_by_port():
    d = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    live = copy.deepcopy(d)
    live["spec"]["ports"] = [{"port": 80, "targetPort": 8080, "protocol": "TCP", "name": ""}]
    assert is_subset(d, live)
    live["spec"]["ports"][0]["targetPort"] = 9090
    assert changed_paths(d, live) == ["spec.ports[port=80,protocol=TCP].targetPort"]


def test_volumes_by_name():
    d = deployment()
    d["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "a"}}]
    live = live_of(d)
    live["spec"]["template"]["spec"]["volumes"][0]["configMap"]["defaultMode"] = 420
    assert is_subset(d, live)
    live["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "b"
    assert changed_paths(d, live) == ["spec.template.spec.volumes[name=cfg].configMap.name"]


def test_atomic_lists_compare_as_a_whole():
    d = deployment(args=["--a", "--b"])
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--b", "--a"]
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].args"]
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--a", "--b", "--c"]
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].args"]


def test_atomic_list_of_maps_tolerates_defaulted_fields():
    d = {"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}
    live = {"spec": {"tolerations": [{"key": "k", "operator": "Exists", "effect": ""}]}}
    assert is_subset(d, live)


def test_finalizers_are_a_set():
    d = {"metadata": {"finalizers": ["a"]}}
    assert is_subset(d, {"metadata": {"finalizers": ["b", "a"]}})
    assert changed_paths(d, {"metadata": {"finalizers": ["b"]}}) == ["metadata.finalizers"]


def test_cpu_and_memory_quantities_are_normalised():
    d = deployment(resources={"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": 1}})
    live = live_of(d)
    live["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "0.1", "memory": "1024Mi"},
        "limits": {"cpu": "1000m"},
    }
    assert is_subset(d, live)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2"
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].resources.limits.cpu"]


def test_quantity_normalisation_only_in_quantity_fields():
    """An env value "0.1" and "100m" are different strings, not quantities."""
    d = deployment(env=[{"name": "RATIO", "value": "0.1"}])
    live = live_of(deployment(env=[{"name": "RATIO", "value": "100m"}]))
    assert changed_paths(d, live) == ["spec.template.spec.containers[name=web].env[name=RATIO].value"]


def test_pvc_storage_and_quota_hard_are_quantities():
    pvc = {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    assert is_subset(pvc, {"spec": {"resources": {"requests": {"storage": "1073741824"}}}})
    quota = {"spec": {"hard": {"pods": "10", "requests.cpu": "1"}}}
    assert is_subset(quota, {"spec": {"hard": {"pods": 10, "requests.cpu": "1000m"}}})


def test_types_matter_for_ordinary_scalars():
    assert changed_paths({"a": True}, {"a": 1}) == ["a"]
    assert changed_paths({"a": "80"}, {"a": 80}) == ["a"]
    assert is_subset({"a": 80}, {"a": 80.0})


def test_null_in_desired_means_unset():
    assert is_subset({"a": None}, {})
    assert changed_paths({"a": None}, {"a": 1}) == ["a"]


def test_live_none_means_everything_changes():
    assert changed_paths(deployment(), None) == [""]


def test_map_replaced_by_scalar():
    assert changed_paths({"spec": {"a": {"b": 1}}}, {"spec": {"a": "x"}}) == ["spec.a"]


# ----------------------------------------------------------------- JSON pointers


def test_parse_pointer_escapes():
    assert parse_pointer("") == []
    assert parse_pointer("/spec/replicas") == ["spec", "replicas"]
    assert parse_pointer("/metadata/annotations/example.com~1owner") == ["metadata", "annotations", "example.com/owner"]
    assert parse_pointer("/a~0b") == ["a~b"]
    assert parse_pointer("/~01") == ["~1"]  # ~01 is "~" then "1", not "/"
    assert parse_pointer("/") == [""]


@pytest.mark.parametrize("bad", ["spec/replicas", "/a~2", "/a~"])
def test_parse_pointer_errors(bad):
    with pytest.raises(LabkitError):
        parse_pointer(bad)


def test_make_pointer_round_trip():
    tokens = ["metadata", "annotations", "a/b~c"]
    assert make_pointer(tokens) == "/metadata/annotations/a~1b~0c"
    assert parse_pointer(make_pointer(tokens)) == tokens
    assert escape_pointer_token("~/") == "~0~1"


def test_get_pointer():
    d = deployment()
    d["metadata"]["annotations"] = {"example.com/owner": "team-a", "a~b": "x"}
    assert get_pointer(d, "/spec/replicas") == 2
    assert get_pointer(d, "/spec/template/spec/containers/0/image") == "web:1.0"
    assert get_pointer(d, "/metadata/annotations/example.com~1owner") == "team-a"
    assert get_pointer(d, "/metadata/annotations/a~0b") == "x"
    assert get_pointer(d, "") is d
    assert get_pointer(d, "/spec/nothing", None) is None
    with pytest.raises(KeyError):
        get_pointer(d, "/spec/template/spec/containers/1")
    with pytest.raises(KeyError):
        get_pointer(d, "/spec/template/spec/containers/01")
    with pytest.raises(KeyError):
        get_pointer(d, "/spec/template/spec/containers/-")


def test_remove_pointer():
    d = deployment()
    assert remove_pointer(d, "/spec/replicas") is True
    assert "replicas" not in d["spec"]
    assert remove_pointer(d, "/spec/replicas") is False
    assert remove_pointer(d, "/spec/template/spec/containers/0") is True
    assert d["spec"]["template"]["spec"]["containers"] == []
    with pytest.raises(LabkitError):
        remove_pointer(d, "")


def test_apply_ignore_rules_copies_and_skips_missing():
    d = deployment()
    out = apply_ignore_rules(d, ["/spec/replicas", "/metadata/labels/app.kubernetes.io~1name", "/not/there"])
    assert "replicas" not in out["spec"]
    assert out["metadata"]["labels"] == {}
    assert d["spec"]["replicas"] == 2  # input untouched


def test_ignored_replicas_are_not_drift():
    """The HPA fix: with /spec/replicas ignored, an HPA-scaled live object is not drifted."""
    d = deployment()
    live = live_of(d)
    live["spec"]["replicas"] = 7
    assert changed_paths(d, live) == ["spec.replicas"]
    assert is_subset(apply_ignore_rules(d, ["/spec/replicas"]), apply_ignore_rules(live, ["/spec/replicas"]))


# ----------------------------------------------------------------- selectors and rules


def test_label_selector_expressions():
    labels = {"app": "web", "tier": "front", "version": "3"}
    assert match_label_selector("", labels)
    assert match_label_selector("app=web", labels)
    assert match_label_selector("app==web,tier!=db", labels)
    assert not match_label_selector("app=api", labels)
    assert match_label_selector("tier in (front, back)", labels)
    assert not match_label_selector("tier notin (front)", labels)
    assert match_label_selector("app,!legacy", labels)
    assert not match_label_selector("legacy", labels)
    assert match_label_selector("version>2", labels)
    assert not match_label_selector("version<2", labels)


def test_label_selector_parse_error():
    with pytest.raises(LabkitError):
        match_label_selector("app in web", {})


def test_selector_regexes_are_anchored():
    d = deployment()
    assert Selector(kind="Deployment").matches(d)
    assert not Selector(kind="Deploy").matches(d)
    assert Selector(kind="Deploy.*").matches(d)
    assert Selector(group="apps", version="v1", name="w.b", namespace="default").matches(d)
    assert Selector().matches({"apiVersion": "v1", "kind": "x", "metadata": {}})
    assert not Selector(group="apps").matches({"apiVersion": "v1", "kind": "x", "metadata": {}})
    assert Selector(label_selector="app.kubernetes.io/name=web").matches(d)
    assert not Selector(annotation_selector="owner").matches(d)


def test_selector_bad_regex():
    with pytest.raises(LabkitError):
        Selector(kind="(")


def test_apply_ignore_with_targets():
    hpa_rule = IgnoreRule(("/spec/replicas",), Selector(kind="Deployment"))
    cm_rule = IgnoreRule(("/data/generated",), Selector(kind="ConfigMap"))
    d = deployment()
    out = apply_ignore(d, [hpa_rule, cm_rule])
    assert "replicas" not in out["spec"]
    everything = IgnoreRule(("/metadata/labels",))
    assert "labels" not in apply_ignore(d, [everything])["metadata"]


def test_ignore_rule_validates_pointers():
    with pytest.raises(LabkitError):
        IgnoreRule(("spec/replicas",))
