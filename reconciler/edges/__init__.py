"""Thin adapters to the outside world: Git, Kubernetes, Helm. Everything else is pure or uses these."""
