"""A sandbox's files are made on any machine from the database and the lab files
alone: two SANDBOX_HOME folders stand for two hosts with no shared disk."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from labapp.catalog.spec import LabSpec
from labapp.sandboxes import workspaces
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_materialize

pytestmark = pytest.mark.django_db
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: me\n  user:\n    token: t0ken\n"


@pytest.fixture(autouse=True)
def no_cluster(settings, tmp_path, monkeypatch):
    """No cluster: the warm kubectl cache is not built (a workspace starts cold)."""
    settings.KUBECONFIG = str(tmp_path / "no-such-kubeconfig")
    monkeypatch.setattr(workspaces, "_last_sweep", time.monotonic())  # no sweeping


@pytest.fixture
def sandbox(learner, tiny_lab: LabSpec) -> Sandbox:
    return Sandbox.objects.create(
        owner=learner,
        lab_id=tiny_lab.id,
        slug="h0st5x",
        namespaces={"shop": "shop-h0st5x"},
        state=Sandbox.State.READY,
        learner_kubeconfig=KUBECONFIG,
    )


def files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != workspaces.LOCK
    }


def on_host(settings, home: Path, sandbox: Sandbox) -> Sandbox:
    """The sandbox as a worker on the host whose SANDBOX_HOME is `home` loads it."""
    settings.SANDBOX_HOME = home
    loaded = Sandbox.objects.get(id=sandbox.id)
    sandbox_materialize(sandbox=loaded)
    return loaded


def test_two_hosts_make_the_same_files_from_the_database(settings, tmp_path, sandbox):
    a = on_host(settings, tmp_path / "host-a", sandbox)
    b = on_host(settings, tmp_path / "host-b", sandbox)
    made = files(tmp_path / "host-a" / sandbox.slug)
    assert made == files(tmp_path / "host-b" / sandbox.slug)
    assert made["kubeconfig"] == KUBECONFIG
    assert "namespace: shop-h0st5x" in made["workspace/shop/base/kustomization.yaml"]
    for loaded in (a, b):
        mode = stat.S_IMODE(loaded.kubeconfig_path.stat().st_mode)
        assert mode == 0o600, oct(mode)


def test_materializing_again_changes_only_what_the_database_changed(settings, tmp_path, sandbox):
    home = tmp_path / "host"
    loaded = on_host(settings, home, sandbox)
    kustomization = loaded.workspace / "shop/base/kustomization.yaml"
    before = kustomization.stat().st_ino
    renewed = KUBECONFIG.replace("t0ken", "renewed")
    Sandbox.objects.filter(id=sandbox.id).update(learner_kubeconfig=renewed)
    again = on_host(settings, home, sandbox)
    assert again.kubeconfig_path.read_text() == renewed
    assert kustomization.stat().st_ino == before  # the workspace was left alone


def test_an_outdated_or_unstamped_workspace_is_rendered_anew_keeping_kubectls_cache(
    settings, tmp_path, sandbox, lab_copy
):
    home = tmp_path / "host"
    loaded = on_host(settings, home, sandbox)
    cache_file = loaded.workspace / ".kube" / "cache" / "discovery" / "servergroups.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("{}")
    # The lab's files change (a new deployment): the copy here is outdated.
    source = lab_copy.workspace_file("shop/configured/configmap.yaml")
    source.write_text(source.read_text().replace("hello", "bonjour"))
    lab_copy.edit("tiny", lambda lab: None)
    on_host(settings, home, sandbox)
    assert "bonjour" in (loaded.workspace / "shop/configured/configmap.yaml").read_text()
    assert cache_file.read_text() == "{}"
    # A workspace made before stamps existed is rendered anew too.
    (loaded.workspace / workspaces.STAMP).unlink()
    (loaded.workspace / "shop/base/kustomization.yaml").unlink()
    on_host(settings, home, sandbox)
    assert (loaded.workspace / "shop/base/kustomization.yaml").is_file()
    assert sorted(p.name for p in loaded.directory.iterdir()) == [
        workspaces.LOCK,
        "kubeconfig",
        "workspace",
    ]  # nothing left behind


def test_runs_materializing_at_once_all_find_a_whole_workspace(settings, tmp_path, sandbox):
    settings.SANDBOX_HOME = tmp_path / "host"
    loaded = Sandbox.objects.get(id=sandbox.id)
    problems: list[BaseException] = []

    def materialize() -> None:
        try:
            sandbox_materialize(sandbox=loaded)
            assert (loaded.workspace / "shop/base/kustomization.yaml").is_file()
        except BaseException as exc:  # reported below
            problems.append(exc)

    threads = [threading.Thread(target=materialize) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert sorted(p.name for p in loaded.directory.iterdir()) == [
        workspaces.LOCK,
        "kubeconfig",
        "workspace",
    ]


def test_a_host_sweeps_the_files_of_sandboxes_that_are_over(
    settings, tmp_path, sandbox, another_learner
):
    settings.SANDBOX_HOME = tmp_path / "host"
    gone = Sandbox.objects.create(
        owner=another_learner,
        lab_id="tiny",
        slug="g0ne00",
        namespaces={"shop": "shop-g0ne00"},
        state=Sandbox.State.DELETED,
    )
    for slug in (sandbox.slug, gone.slug, "unkn0w"):
        (tmp_path / "host" / slug).mkdir(parents=True)
    os.makedirs(tmp_path / "host" / workspaces.WARM_CACHE_DIR)
    assert workspaces.sweep_local_files() == 1
    assert sorted(p.name for p in (tmp_path / "host").iterdir()) == sorted(
        [workspaces.WARM_CACHE_DIR, sandbox.slug, "unkn0w"]
    )
