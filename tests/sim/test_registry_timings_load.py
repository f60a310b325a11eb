"""The scenario inputs: image registry, timing distributions and the load model."""
from __future__ import annotations

import math
import statistics

import pytest

from labkit.core.errors import LabkitError
from labkit.sim import SimCluster
from labkit.sim.load import Constant, DailySinusoid, LoadModel, PiecewiseLinear, Spike, Step, profile_from_spec
from labkit.sim.registry import ImageRegistry, parse_image
from labkit.sim.timings import Dist, Timings


# ---------------------------------------------------------------- registry

def test_image_references_normalise_like_a_container_runtime():
    assert parse_image("nginx").repository == "nginx" and parse_image("nginx").tag == "latest"
    for ref in ("nginx:latest", "docker.io/nginx", "docker.io/library/nginx:latest", "library/nginx"):
        assert (parse_image(ref).repository, parse_image(ref).tag) == ("nginx", "latest")
    r = parse_image("registry.local:5000/team/app:1.2")
    assert (r.repository, r.tag) == ("registry.local:5000/team/app", "1.2")
    assert parse_image("web@sha256:abc").tag == "sha256:abc"
    assert parse_image("web:v1").canonical == "docker.io/library/web:v1"
    assert parse_image("ghcr.io/acme/web:v1").canonical == "ghcr.io/acme/web:v1"


def test_permissive_registry_knows_declared_repositories_strictly():
    reg = ImageRegistry().add("web", ["v1", "v2"])
    assert reg.has("web:v1") and reg.has("docker.io/library/web:v2")
    assert not reg.has("web:v3")           # a declared repository has only its declared tags
    assert reg.has("redis:7")              # an undeclared repository has every tag
    reg.remove("web:v2")
    assert not reg.has("web:v2")


def test_strict_registry_has_only_what_was_added():
    reg = ImageRegistry(strict=True).add("web:v1")
    assert reg.has("web:v1") and not reg.has("redis:7")
    assert reg.lookup("web:v1").tag == "v1" and reg.lookup("redis:7") is None


def test_simcluster_defaults():
    c = SimCluster(seed=3)
    assert isinstance(c.registry, ImageRegistry) and not c.registry.strict
    assert isinstance(c.load, LoadModel) and isinstance(c.timings, Timings)
    assert c.store.graceful_pods is True
    names = [type(x).__name__ for x in c.controllers]
    assert names == ["Kubelet", "DeploymentController", "ReplicaSetController", "HorizontalPodAutoscalerController",
                     "JobController", "StatefulSetController", "PersistentVolumeController"]


# ---------------------------------------------------------------- timings

def test_dist_parsing_and_bounds():
    assert Dist.parse(2) == Dist.fixed(2)
    assert Dist.parse([2, 8]) == Dist.uniform(2, 8)
    assert Dist.parse({"normal": {"mean": 1, "sd": 0.2}}).kind == "normal"
    with pytest.raises(LabkitError):
        Dist.parse(-1)
    with pytest.raises(LabkitError):
        Dist.parse("fast")


def test_timings_from_dict_names_the_bad_field():
    t = Timings.from_dict({"pull": [1, 3], "start": 0.5})
    assert t.pull == Dist.uniform(1, 3) and t.start == Dist.fixed(0.5)
    with pytest.raises(LabkitError) as err:
        Timings.from_dict({"pulll": 3}, file="scenario.yaml")
    assert "timings.pulll" in str(err.value) and "scenario.yaml" in str(err.value)
    with pytest.raises(LabkitError) as err:
        Timings.from_dict({"hpa_sync_period": "soon"})
    assert "timings.hpa_sync_period" in str(err.value)


def test_samplers_are_seeded_per_stream():
    t = Timings()
    a, b = t.sampler(5), t.sampler(5)
    draws_a = [a.draw("termination") for _ in range(20)]
    # another stream in between does not shift this one
    draws_b = []
    for _ in range(20):
        b.draw("ready_jitter")
        draws_b.append(b.draw("termination"))
    assert draws_a == draws_b
    assert all(1.0 <= x <= 3.0 for x in draws_a)
    assert t.sampler(6).draw("termination") != draws_a[0]
    # the pull time of an image is drawn once, whoever asks
    assert a.pull_time("web:v1") == a.pull_time("web:v1") == b.pull_time("web:v1")
    assert a.pull_time("web:v1", override=30) == a.pull_time("web:v1")  # first draw wins
    assert t.sampler(5).pull_time("db:v1", override=30) == 30


def test_deterministic_timings_have_no_jitter():
    t = Timings.deterministic()
    s = t.sampler(1)
    assert {s.draw("ready_jitter") for _ in range(5)} == {0.0}
    assert s.draw("schedule") == 0.5 and s.draw("start") == 1.0


# ---------------------------------------------------------------- load

def test_profiles():
    assert Constant(300)(1e6) == 300
    assert Step(100, 500, at=60)(59.9) == 100 and Step(100, 500, at=60)(60) == 500
    spike = Spike(100, 900, start=100, duration=50, ramp=10)
    assert [spike(t) for t in (80, 95, 100, 149, 155, 160)] == [100, 500, 900, 900, 500, 100]
    day = DailySinusoid(500, 300, period=86400, peak_at=14 * 3600)
    assert day(14 * 3600) == pytest.approx(800) and day(2 * 3600) == pytest.approx(200)
    pw = PiecewiseLinear([(0, 0), (100, 1000), (200, 1000)])
    assert [pw(t) for t in (-5, 50, 150, 300)] == [0, 500, 1000, 1000]
    assert profile_from_spec({"type": "step", "before": 1, "after": 2, "at": 3})(3) == 2
    with pytest.raises(LabkitError):
        profile_from_spec({"type": "sawtooth"})


def test_noise_is_a_pure_function_of_time_with_the_asked_spread():
    m = LoadModel(seed=1).set("web", 1000, noise=0.1, noise_period=15)
    samples = [m.demand("default", "web", 15 * i + 3) for i in range(4000)]
    assert m.demand("default", "web", 30) == m.demand("default", "web", 44.9)  # same 15 s bucket
    assert statistics.mean(samples) == pytest.approx(1000, rel=0.01)
    assert statistics.pstdev(samples) == pytest.approx(100, rel=0.1)
    other = LoadModel(seed=2).set("web", 1000, noise=0.1)
    assert other.demand("default", "web", 3) != samples[0]
    assert LoadModel(seed=1).set("web", 1000, noise=0.1).demand("default", "web", 3) == samples[0]


def test_usage_is_shared_by_ready_pods():
    m = LoadModel().set("prod/api", 900)
    assert m.usage_per_pod("prod", "api", 0, 3) == 300
    assert m.usage_per_pod("prod", "api", 0, 0) == 0
    assert m.demand("default", "api", 0) == 0  # another namespace
    assert math.isclose(LoadModel().set("web", {"type": "constant", "millicores": 5}).demand("default", "web", 1), 5)
