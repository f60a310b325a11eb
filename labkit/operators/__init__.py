"""Operators the scenarios run next to the simulator's own controllers.

``labkit.operators.database`` — ``DatabaseOperator``: a ``Database`` custom
resource (``db.labkit.io/v1alpha1``) becomes a real SQLite database, and
deleting the resource drops it unless ``spec.deletionPolicy: Retain``.
"""
from labkit.operators.database import DatabaseOperator, database_crd, database_manifest

__all__ = ["DatabaseOperator", "database_crd", "database_manifest"]
