"""The health watcher's edges: notifications over HTTP (the Kubernetes edge is the ground floor's)."""
