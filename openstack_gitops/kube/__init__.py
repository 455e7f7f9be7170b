"""Kubernetes: objects as plain dicts (pure), the API client edge, leader-election Leases."""
