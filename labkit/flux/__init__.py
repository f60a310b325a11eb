"""The Flux dialect: GitRepository and Kustomization, over labkit's engine.

``labkit.flux.api`` reads and validates the real Flux YAML (``GitRepositorySpec``,
``KustomizationSpec``); the controllers that reconcile them live next to it.
This package module re-exports nothing, so importing the API types never pulls
in the controllers (or git).
"""
