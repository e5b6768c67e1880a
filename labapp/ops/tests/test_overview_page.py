from __future__ import annotations

import pytest

from tests.fixtures.cluster import write_unreachable_kubeconfig

pytestmark = pytest.mark.django_db


@pytest.mark.cluster
def test_overview_shows_the_real_clusters_version_and_namespaces(
    admin_client, settings, local_cluster
):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    response = admin_client.get("/cluster/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<dd data-testid="version">v1.37.2</dd>' in page
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"<li>{namespace}</li>" in page
    assert "kwok-node-0" in page


@pytest.mark.cluster
def test_htmx_refresh_returns_only_the_fragment(admin_client, settings, local_cluster):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    response = admin_client.get("/cluster/", headers={"HX-Request": "true"})
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="cluster"')
    assert "<html" not in page


def test_unreachable_cluster_is_named_not_hidden(admin_client, settings, tmp_path, unused_tcp_port):
    kubeconfig = write_unreachable_kubeconfig(tmp_path / "kubeconfig", unused_tcp_port)
    settings.KUBECONFIG = str(kubeconfig)
    response = admin_client.get("/cluster/")
    assert response.status_code == 503
    page = response.content.decode()
    assert "Cannot reach the cluster" in page
    assert f"127.0.0.1:{unused_tcp_port}" in page


def test_missing_kubeconfig_is_named(admin_client, settings, tmp_path):
    settings.KUBECONFIG = str(tmp_path / "nope.yaml")
    response = admin_client.get("/cluster/")
    assert response.status_code == 503
    assert f"kubeconfig {tmp_path / 'nope.yaml'} does not exist" in response.content.decode()
