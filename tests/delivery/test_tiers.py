"""Nearest-cluster classification against the DORA 2024 clusters, worked out by hand."""
import math

import pytest

from labkit.delivery.tiers import classify, dora_2024

LEAD_SPAN = math.log10(4380 / 24)  # lead time band edges 24 h .. 4380 h
FREQ_SPAN = math.log10(1 / (24 / 4380))  # frequency band edges 1/182.5 .. 1 per day
REC_SPAN = math.log10(730 / 1)  # recovery band edges 1 h .. 730 h
CFR_SPAN = 0.40 - 0.05


def test_data_carries_the_citation_and_the_non_monotonic_column():
    cl = dora_2024()
    assert cl.names == ["elite", "high", "medium", "low"]
    assert "State of DevOps Report 2024" in cl.citation() and "p. 13" in cl.citation()
    cfr = {c.name: c.change_failure_rate for c in cl.clusters}
    assert cfr == {"elite": 0.05, "high": 0.20, "medium": 0.10, "low": 0.40}
    assert cfr["medium"] < cfr["high"]  # why one column cannot give the tier
    spans = cl.spans()
    assert spans["lead_time_h"] == pytest.approx(LEAD_SPAN)
    assert spans["deploys_per_day"] == pytest.approx(FREQ_SPAN, rel=1e-4)
    assert spans["recovery_h"] == pytest.approx(REC_SPAN)
    assert spans["change_failure_rate"] == pytest.approx(CFR_SPAN)


def test_inside_a_cluster_is_distance_zero():
    elite = classify(lead_time_h=2, deploys_per_day=5, change_failure_rate=0.05, recovery_h=0.5)
    assert elite.tier == "elite" and elite.distances["elite"] == 0
    low = classify(lead_time_h=2000, deploys_per_day=0.01, change_failure_rate=0.40, recovery_h=300)
    assert low.tier == "low" and low.distances["low"] == 0
    high = classify(lead_time_h=48, deploys_per_day=0.5, change_failure_rate=0.20, recovery_h=12)
    assert high.tier == "high" and high.distances["high"] == 0


def test_distance_by_hand():
    r = classify(lead_time_h=48, deploys_per_day=0.5, change_failure_rate=0.20, recovery_h=12)
    # elite: lead 48 h is log10(48/24) decades above 24 h; frequency 0.5/day is log10(1/0.5) below 1/day;
    # fail rate 15 points from 5 %; recovery 12 h is log10(12) decades above 1 h
    expected = math.sqrt((math.log10(2) / LEAD_SPAN) ** 2 + (math.log10(2) / FREQ_SPAN) ** 2
                         + (0.15 / CFR_SPAN) ** 2 + (math.log10(12) / REC_SPAN) ** 2)
    assert r.distances["elite"] == pytest.approx(expected)


def test_fail_rate_of_ten_percent_pulls_toward_medium():
    # Lead time and frequency inside the high bands, recovery inside high's and medium's, but a 10 % fail
    # rate -- the medium cluster's value.
    r = classify(lead_time_h=100, deploys_per_day=0.5, change_failure_rate=0.10, recovery_h=12)
    high = abs(0.10 - 0.20) / CFR_SPAN
    medium = math.sqrt((math.log10(168 / 100) / LEAD_SPAN) ** 2 + (math.log10(0.5 / (1 / 7)) / FREQ_SPAN) ** 2)
    assert r.distances["high"] == pytest.approx(high)
    assert r.distances["medium"] == pytest.approx(medium, rel=1e-4)
    assert medium < high and r.tier == "medium"
    # the same team with high's 20 % fail rate is high: a better fail rate made it "worse"
    assert classify(lead_time_h=100, deploys_per_day=0.5, change_failure_rate=0.20, recovery_h=12).tier == "high"


def test_boundary_values_and_ties():
    # exactly 24 h lead time is inside elite's band (< 1 day, closed edge) and high's (1 day - 1 week)
    r = classify(lead_time_h=24, deploys_per_day=2, change_failure_rate=0.05, recovery_h=0.5)
    assert r.tier == "elite" and r.distances["elite"] == 0
    # on every shared edge with a fail rate midway between 5 % and 20 %: elite and high are equally far;
    # the tie goes to the cluster listed first (elite)
    t = classify(lead_time_h=24, deploys_per_day=1, change_failure_rate=0.125, recovery_h=1)
    assert t.distances["elite"] == pytest.approx(0.075 / CFR_SPAN)
    assert t.distances["high"] == pytest.approx(0.075 / CFR_SPAN)
    assert t.tier == "elite"
    # one hour more recovery breaks the tie toward high (elite's recovery band ends at 1 h)
    assert classify(lead_time_h=24, deploys_per_day=1, change_failure_rate=0.125, recovery_h=2).tier == "high"


def test_missing_metric_is_left_out():
    r = classify(lead_time_h=2, deploys_per_day=5, change_failure_rate=0.05, recovery_h=None)
    assert r.used == ("lead_time_h", "deploys_per_day", "change_failure_rate")
    assert r.tier == "elite"
    with pytest.raises(Exception):
        classify(lead_time_h=None, deploys_per_day=None, change_failure_rate=None, recovery_h=None)
