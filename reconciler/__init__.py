"""openstack-gitops reconciler: keeps a Kubernetes cluster equal to an OpenStack spec in Git."""
