"""Flux image automation: policies, semver ranges, marker rewriting, and the controllers on a clock."""
import pytest

from labkit.core import clock
from labkit.delivery import image_automation as ia
from labkit.delivery.semver import latest, parse_constraint, parse_version
from labkit.core.errors import LabkitError
from labkit.core.events import EventLog

TAGS = ["1.0.0", "1.2.3", "v1.3.0", "1.3.0-rc.1", "1.10.0", "2.0.0", "0.9", "latest", "01.2.3", "0.0.3", "0.2.5"]


@pytest.mark.parametrize("rng, expected", [
    ("*", "2.0.0"),                       # every release version; 1.3.0-rc.1 (pre-release) never matches
    (">=1.0.0 <2.0.0", "1.10.0"),         # 1.10.0 > 1.3.0 numerically, not lexically
    ("^1.2", "1.10.0"),                   # >=1.2.0 <2.0.0
    ("~1.2.3", "1.2.3"),                  # >=1.2.3 <1.3.0
    ("~1.3", "v1.3.0"),                   # the tag is returned as written, with its v
    ("1.x", "1.10.0"),
    ("1.3", "v1.3.0"),                    # a partial version means "1.3.x"
    (">1.2", "2.0.0"),                    # minor above 2 ... or any higher major
    ("<=1", "1.10.0"),                    # every 1.y.z
    ("1.0 - 1.5", "v1.3.0"),              # hyphen range: >=1.0.0 <=1.5.0
    ("<1 || >=2", "2.0.0"),
    ("!=2.0.0", "1.10.0"),
    ("^0.2.3", "0.2.5"),                  # >=0.2.3 <0.3.0
    ("^0.0.3", "0.0.3"),                  # exactly 0.0.3
    (">=1.0.0, <1.10.0", "v1.3.0"),
    (">=3", None),
])
def test_semver_policy_ranges(rng, expected):
    assert latest(TAGS, rng) == expected


def test_semver_prereleases_only_when_asked_for():
    assert latest(["1.2.0", "1.3.0-rc.1"], ">=1.2.0") == "1.2.0"
    assert latest(["1.2.0", "1.3.0-rc.1"], ">=1.3.0-0") == "1.3.0-rc.1"
    # precedence: rc.2 > rc.1 (numeric identifiers), rc.10 > rc.2, and a release beats its pre-releases
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0"]
    parsed = [parse_version(t) for t in order]
    assert parsed == sorted(parsed)


def test_strict_parsing_like_flux():
    assert parse_version("v1.2.3").original == "v1.2.3"
    assert parse_version("1.2") is None  # Flux requires MAJOR.MINOR.PATCH
    assert parse_version("01.2.3") is None  # no leading zeros
    assert parse_version("latest") is None
    with pytest.raises(LabkitError, match="improper constraint"):
        parse_constraint(">= one")


def test_alphabetical_and_numerical():
    assert ia.latest_tag(ia.Policy("alphabetical"), ["RELEASE.2024-01-02", "RELEASE.2023-12-31"]) == "RELEASE.2024-01-02"
    assert ia.latest_tag(ia.Policy("alphabetical", order="desc"), ["b", "a", "c"]) == "a"
    # byte-wise: uppercase sorts before lowercase
    assert ia.latest_tag(ia.Policy("alphabetical"), ["Zeta", "alpha"]) == "alpha"
    assert ia.latest_tag(ia.Policy("numerical"), ["9", "10", "1.5"]) == "10"
    assert ia.latest_tag(ia.Policy("numerical", order="desc"), ["9", "10", "1.5"]) == "1.5"
    with pytest.raises(LabkitError, match="failed to parse invalid numeric value 'v2'"):
        ia.latest_tag(ia.Policy("numerical"), ["1", "v2"])


def test_filter_tags_with_extract():
    pol = ia.Policy("numerical", pattern=r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", extract="$ts")
    tags = ["main-abc1234-1700000100", "main-def5678-1700000900", "feature-x-1800000000", "main-0aa-1700000200"]
    assert ia.latest_tag(pol, tags) == "main-def5678-1700000900"
    assert ia.filter_tags(["v1-a", "v2-b"], r"^v(\d)-(\w)$", "${2}$1") == {"a1": "v1-a", "b2": "v2-b"}
    with pytest.raises(LabkitError, match="version list argument cannot be empty"):
        ia.latest_tag(pol, ["feature-x-1"])


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:app"}
        - name: side
          image: "ghcr.io/org/side:1"  # {"$imagepolicy": "flux-system:side"}
        - name: other
          image: ghcr.io/org/other:1 # {"$imagepolicy": "flux-system:missing"}
        - name: plain
          image: ghcr.io/org/plain:1 # a comment, not a marker
"""

KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: ghcr.io/org/app
    newName: ghcr.io/org/app # {"$imagepolicy": "flux-system:app:name"}
    newTag: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}
    digest: sha256:0 # {"$imagepolicy": "flux-system:app:digest"}
"""

RESULTS = {"flux-system:app": ia.PolicyResult("ghcr.io/org/app", "1.2.0", "sha256:abc"),
           "flux-system:side": ia.PolicyResult("ghcr.io/org/side", "2")}


def test_full_image_markers_keep_everything_else():
    text, changes = ia.set_markers(DEPLOY, RESULTS, file="deploy.yaml")
    expected = (DEPLOY.replace("ghcr.io/org/app:1.0.0 #", "ghcr.io/org/app:1.2.0 #")
                .replace('"ghcr.io/org/side:1"', '"ghcr.io/org/side:2"'))
    assert text == expected  # quoting, spacing and the other lines byte for byte
    assert [(c.line, c.setter, c.old, c.new) for c in changes] == [
        (10, "flux-system:app", "ghcr.io/org/app:1.0.0", "ghcr.io/org/app:1.2.0"),
        (12, "flux-system:side", "ghcr.io/org/side:1", "ghcr.io/org/side:2")]


def test_tag_name_and_digest_suffixes():
    text, changes = ia.set_markers(KUSTOMIZATION, RESULTS)
    assert "newTag: 1.2.0 # " in text
    assert "newName: ghcr.io/org/app # " in text  # unchanged value: no change recorded
    assert "digest: sha256:abc # " in text
    assert [c.setter for c in changes] == ["flux-system:app:tag", "flux-system:app:digest"]
    # a policy without a digest leaves a :digest marker alone
    text2, _ = ia.set_markers(KUSTOMIZATION, {"flux-system:app": ia.PolicyResult("ghcr.io/org/app", "1.2.0")})
    assert "digest: sha256:0 # " in text2


def test_marker_parsing():
    assert ia.parse_marker(' {"$imagepolicy": "ns:name:tag"}') == "ns:name:tag"
    assert ia.parse_marker(' {"$imagepolicy": "ns:name", "x": 1}') is None
    assert ia.parse_marker(" $imagepolicy ns:name") is None
    assert ia.split_setter("ns:name:tag") == ("ns", "name", "tag")
    assert ia.split_setter("ns:name:bogus") is None
    assert ia.split_setter("name") is None


def test_update_files_respects_path():
    files = {"apps/app/kustomization.yaml": KUSTOMIZATION, "infra/k.yaml": KUSTOMIZATION, "apps/README.md": KUSTOMIZATION}
    changed, changes = ia.update_files(files, RESULTS, path="./apps")
    assert sorted(changed) == ["apps/app/kustomization.yaml"]
    assert {c.file for c in changes} == {"apps/app/kustomization.yaml"}


def test_parse_flux_objects():
    pol = ia.parse_image_object({"apiVersion": "image.toolkit.fluxcd.io/v1beta2", "kind": "ImagePolicy",
                                 "metadata": {"name": "app", "namespace": "flux-system"},
                                 "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "5.0.x"}}}})
    assert pol.repository == "flux-system:app" and pol.policy.range == "5.0.x"
    with pytest.raises(LabkitError, match="spec.policy.alphabetical.order"):
        ia.parse_image_object({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                               "metadata": {"name": "p"},
                               "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {"order": "up"}}}})
    with pytest.raises(LabkitError, match="spec.git.commit.author.email"):
        ia.parse_image_object({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                               "metadata": {"name": "u"}, "spec": {"interval": "5m", "sourceRef": {"name": "r"},
                                                                   "git": {"commit": {"author": {"name": "x"}}}}})


def test_controllers_scan_select_and_commit(tmp_path):
    from labkit.gitops.repo import ManifestRepo
    from labkit.sim.registry import ImageRegistry

    env = clock.virtual()
    log = EventLog(lambda: env.now)
    repo = ManifestRepo(tmp_path / "fleet", log=log)
    repo.commit({"apps/app/kustomization.yaml": KUSTOMIZATION}, message="app", author="alice", when=0)
    registry = ImageRegistry()
    registry.add("ghcr.io/org/app", ["1.0.0", "1.1.0", "1.1.0.sig"])
    auto = ia.ImageAutomation(env, registry, log=log, timings=ia.ImageTimings.fixed(scan=1, automation_run=3))
    auto.apply({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                "metadata": {"name": "app", "namespace": "flux-system"},
                "spec": {"image": "ghcr.io/org/app", "interval": "1m"}})
    auto.apply({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": "app", "namespace": "flux-system"},
                "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}}})
    auto.add_automation({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                         "metadata": {"name": "flux-system", "namespace": "flux-system"},
                         "spec": {"interval": "30m", "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                                  "git": {"checkout": {"ref": {"branch": "main"}},
                                          "commit": {"author": {"name": "fluxcdbot", "email": "fluxcdbot@example.com"}},
                                          "push": {"branch": "main"}},
                                  "update": {"path": "./apps", "strategy": "Setters"}}}, repo)
    env.run(until=30)
    # scan at 1 s finds 1.0.0 and 1.1.0 (the .sig tag is excluded); the automation's first run (3 s) commits
    assert auto.repositories["flux-system:app"].tags == ["1.0.0", "1.1.0"]
    text = repo.read("apps/app/kustomization.yaml")
    assert "newTag: 1.1.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}" in text
    head = repo.git.commit(repo.head())
    assert head.author.name == "fluxcdbot" and head.message.strip() == ia.DEFAULT_MESSAGE
    pushed = log.filter(component=ia.AUTOMATION, event="Pushed")
    assert len(pushed) == 1 and pushed[0].time == 3
    # Each scan takes 1 s and the next is queued an interval (60 s) after it ends: scans finish at 1, 62, 123 s.
    # CI publishes 1.2.0 at 100 s; the scan finishing at 123 s selects it, the policy change wakes the
    # automation, which commits 3 s later
    env.run(until=100)
    registry.add("ghcr.io/org/app", ["1.2.0"])
    env.run(until=200)
    changed = log.filter(component=ia.REFLECTOR, event="LatestImageChanged")
    assert [(e.time, e.revision) for e in changed] == [(1, "1.1.0"), (123, "1.2.0")]
    pushed = log.filter(component=ia.AUTOMATION, event="Pushed")
    assert [e.time for e in pushed] == [3, 126]
    assert "newTag: 1.2.0 #" in repo.read("apps/app/kustomization.yaml")
