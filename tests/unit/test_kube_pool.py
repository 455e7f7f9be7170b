"""The edge keeps enough HTTP connections open for the threads that share one Cluster. No request is sent."""

from __future__ import annotations

from kubernetes import client

from openstack_gitops.kube.client import POOL_SIZE, Cluster


def pool_size(api: client.ApiClient) -> int:
    return int(api.rest_client.pool_manager.connection_pool_kw["maxsize"])


def test_a_cluster_keeps_a_connection_per_thread_that_shares_it() -> None:
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = 10  # the library's default on 2 CPUs (5 per CPU)
    api = client.ApiClient(configuration)
    assert pool_size(api) == 10
    Cluster(api)
    assert pool_size(api) >= POOL_SIZE


def test_a_larger_pool_is_left_as_it_is() -> None:
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE * 2
    api = client.ApiClient(configuration)
    rest_client = api.rest_client
    Cluster(api)
    assert api.rest_client is rest_client and pool_size(api) == POOL_SIZE * 2
