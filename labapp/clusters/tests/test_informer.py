"""Informers against a real API server: they cache, they filter, and they come back
after the API server restarts. A cluster of their own, since these kill its apiserver."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from labapp.clusters.informer import CacheReader, Informer, KindRef
from labapp.clusters.localcluster import LocalCluster, Toolchain
from labapp.clusters.objects import ApiReader
from tests.fixtures.cluster import make_kubectl
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.cluster

OURS = "labapp.dev/sandbox"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, toolchain: Toolchain, local_cluster) -> Iterator[LocalCluster]:
    own = LocalCluster("informers", home=tmp_path_factory.mktemp("informers"), toolchain=toolchain)
    own.up(progress=lambda message: None)
    yield own
    own.down(progress=lambda message: None)


@pytest.fixture
def informers(cluster) -> Iterator[tuple[Informer, Informer, list[str]]]:
    """A namespace informer that keeps labapp's namespaces, and a ConfigMap informer
    that keeps only objects in them, both noting every namespace that changed."""
    changed: list[str] = []
    stop = threading.Event()
    namespaces = Informer(
        cluster.kubeconfig_path,
        KindRef("v1", "Namespace"),
        on_change=changed.append,
        label_selector=OURS,
    )
    configmaps = Informer(
        cluster.kubeconfig_path,
        KindRef("v1", "ConfigMap"),
        on_change=changed.append,
        wanted=lambda ns: namespaces.get(None, ns) is not None,
    )
    for informer in (namespaces, configmaps):
        threading.Thread(target=informer.run, args=(stop,), daemon=True).start()
        assert informer.synced.wait(30)
    yield namespaces, configmaps, changed
    stop.set()


def test_the_cache_follows_changes_and_keeps_only_labapp_namespaces(cluster, informers):
    namespaces, configmaps, changed = informers
    kubectl = make_kubectl(cluster.kubeconfig_path)
    kubectl("create", "namespace", "ours-1")
    kubectl("label", "namespace", "ours-1", f"{OURS}=s1")
    kubectl("create", "namespace", "theirs-1")
    wait_for(lambda: namespaces.get(None, "ours-1"), timeout=10, what="ours-1 in the cache")
    configmaps.backfill("ours-1")  # what the tracker does for a namespace it has just seen
    kubectl("-n", "ours-1", "create", "configmap", "shop", "--from-literal=GREETING=hi")
    kubectl("-n", "theirs-1", "create", "configmap", "shop", "--from-literal=GREETING=hi")
    found = wait_for(lambda: configmaps.get("ours-1", "shop"), timeout=10, what="the configmap")
    assert found["data"] == {"GREETING": "hi"}
    assert "managedFields" not in found["metadata"]  # slimmed: no check reads it
    assert namespaces.get(None, "theirs-1") is None
    assert configmaps.get("theirs-1", "shop") is None  # not ours: never kept
    assert "ours-1" in changed

    kubectl("-n", "ours-1", "patch", "configmap", "shop", "-p", '{"data":{"GREETING":"hello"}}')
    wait_for(
        lambda: (configmaps.get("ours-1", "shop") or {}).get("data") == {"GREETING": "hello"},
        timeout=10,
        what="the patch in the cache",
    )
    # Checks read the cache through the same interface as the API.
    reader = CacheReader([namespaces, configmaps], ApiReader(cluster.kubeconfig_path))
    cached = reader.get(api_version="v1", kind="ConfigMap", name="shop", namespace="ours-1")
    live = ApiReader(cluster.kubeconfig_path).get(
        api_version="v1", kind="ConfigMap", name="shop", namespace="ours-1"
    )
    assert cached.body["data"] == live.body["data"]
    listed = reader.list(
        api_version="v1", kind="Namespace", namespace=None, label_selector=f"{OURS}=s1"
    )
    assert [obj.name for obj in listed] == ["ours-1"]

    kubectl("-n", "ours-1", "delete", "configmap", "shop")
    wait_for(lambda: configmaps.get("ours-1", "shop") is None, timeout=10, what="the delete")


def test_after_the_api_server_restarts_the_informers_list_again_and_see_new_changes(
    cluster, informers
):
    namespaces, _, changed = informers
    kubectl = make_kubectl(cluster.kubeconfig_path)
    kubectl("create", "namespace", "ours-2")
    kubectl("label", "namespace", "ours-2", f"{OURS}=s2")
    wait_for(lambda: namespaces.get(None, "ours-2"), timeout=10, what="ours-2")
    lists_before = namespaces.relists

    apiserver = next(row for row in cluster.status() if row.name == "kube-apiserver")
    os.kill(apiserver.pid, signal.SIGKILL)
    cluster.up(progress=lambda message: None)  # brings back what is down
    # Made while the informers were cut off or reconnecting: they must still see it.
    kubectl("create", "namespace", "ours-3")
    kubectl("label", "namespace", "ours-3", f"{OURS}=s3")
    wait_for(lambda: namespaces.get(None, "ours-3"), timeout=30, what="ours-3 after the restart")
    assert namespaces.relists > lists_before  # it listed again rather than trusting old state
    assert "ours-3" in changed
