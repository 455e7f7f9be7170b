"""The autoscaler's edges: Prometheus (the Kubernetes edge is the ground floor's)."""
