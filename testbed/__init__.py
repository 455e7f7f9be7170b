"""A real local Kubernetes control plane (etcd, kube-apiserver, kwok, ...) for tests and the demo."""
