"""openstack-gitops reconciler: keeps a Kubernetes cluster equal to an OpenStack spec in Git."""

__version__ = "0.1.0"
