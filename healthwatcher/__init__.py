"""openstack-gitops health watcher: restarts failed compute and database pods, safely (its own issue)."""
