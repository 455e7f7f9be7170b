"""openstack-gitops autoscaler: scales OpenStack API Deployments from load-balancer metrics."""
