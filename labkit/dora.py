"""The DORA four keys and tiers, at the top of the package for notebooks: ``from labkit import dora``.

The definitions, the fourkeys queries they reproduce and the DORA 2024 cluster
data are documented in ``labkit.delivery.dora`` and ``labkit.delivery.tiers``;
this module only re-exports them.
"""
from labkit.delivery.dora import (  # noqa: F401
    CHANGE,
    DEPLOYED,
    INCIDENT_OPENED,
    INCIDENT_RESOLVED,
    FourKeys,
    FourKeysTables,
    change_failure_rate,
    deployment_frequency_bucket,
    deploys_per_day,
    failure_rate_bucket,
    four_keys,
    lead_time_median_h,
    lead_times,
    recovery_median_h,
    recovery_times_h,
    tables_from_log,
    time_bucket,
)
from labkit.delivery.tiers import Classification, Clusters, classify, dora_2024  # noqa: F401

__all__ = [
    "CHANGE", "DEPLOYED", "INCIDENT_OPENED", "INCIDENT_RESOLVED", "FourKeys", "FourKeysTables",
    "change_failure_rate", "deployment_frequency_bucket", "deploys_per_day", "failure_rate_bucket", "four_keys",
    "lead_time_median_h", "lead_times", "recovery_median_h", "recovery_times_h", "tables_from_log", "time_bucket",
    "Classification", "Clusters", "classify", "dora_2024",
]
