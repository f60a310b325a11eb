"""Go duration strings: parsing and formatting follow Go ``src/time/format.go``
(``ParseDuration``, ``Duration.String``); the Flux pattern is the kubebuilder
validation marker of kustomize-controller / source-controller ``api/v1``."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit.core.duration import (
    FLUX_DURATION_PATTERN,
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)
from labkit.core.errors import LabkitError


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("2h45m", 9900.0),
        ("1h0m0s", 3600.0),
        ("1.5h", 5400.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("0", 0.0),
        ("-1m", -60.0),
        ("+5s", 5.0),
        ("300us", 0.0003),
        ("300\u00b5s", 0.0003),
        ("10ns", 1e-08),
    ],
)
def test_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


def test_parse_is_exact_in_nanoseconds():
    assert parse_duration_ns("1.1s") == 1_100_000_000
    assert parse_duration_ns("2h45m") == (2 * 3600 + 45 * 60) * 10**9


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (90, "1m30s"),
        (600, "10m0s"),
        (3600, "1h0m0s"),
        (9900, "2h45m0s"),
        (-60, "-1m0s"),
        (1.5e-6, "1.5\u00b5s"),
    ],
)
def test_format_like_go(seconds, text):
    assert format_duration(seconds) == text


def test_format_nanoseconds():
    assert format_duration_ns(999) == "999ns"
    assert format_duration_ns(1_000_001) == "1.000001ms"


@pytest.mark.parametrize(
    "text, why",
    [
        ("1x", 'invalid duration "1x": unknown unit "x"'),
        ("1d", 'invalid duration "1d": unknown unit "d"'),
        ("1", 'invalid duration "1": missing unit'),
        ("", 'invalid duration ""'),
        ("s", 'invalid duration "s"'),
        ("-", 'invalid duration "-"'),
    ],
)
def test_errors_name_the_field(text, why):
    with pytest.raises(LabkitError) as exc:
        parse_duration(text, field="spec.interval", file="flux.yaml")
    assert str(exc.value) == f"flux.yaml: spec.interval: {why}"
    assert exc.value.field == "spec.interval"


def test_non_string_is_an_error():
    with pytest.raises(LabkitError, match="must be a string"):
        parse_duration(60, field="spec.interval")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0", "-1m", "1us", "10ns", "1.5.5s", "5m "])
def test_flux_pattern_rejects_what_the_crd_rejects(text):
    with pytest.raises(LabkitError) as exc:
        parse_duration(text, field="spec.interval", pattern=FLUX_DURATION_PATTERN)
    assert str(exc.value).startswith(f'spec.interval: invalid duration "{text}"')


@pytest.mark.parametrize("text", ["1m", "10m0s", "1.5h", "500ms", "2h45m"])
def test_flux_pattern_accepts(text):
    assert parse_duration(text, pattern=FLUX_DURATION_PATTERN) > 0


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip_nanoseconds(ns):
    assert parse_duration_ns(format_duration_ns(ns)) == ns


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=59))
def test_round_trip_hms(h, m, s):
    text = f"{h}h{m}m{s}s"
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
