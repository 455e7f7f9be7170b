"""openstack-gitops' ground floor: what the reconciler, the autoscaler and the health watcher share.

The resource API, the pure spec model and health rules, the Kubernetes edge, logs and loops.
It imports none of the three processes.
"""

__version__ = "0.1.0"
