"""A learner's copy of the kustomize folders names their own namespaces, and only those."""

from __future__ import annotations

import subprocess

import yaml

from labapp.catalog.registry import get_lab
from labapp.catalog.workspace import render_workspace, workspace_listing
from labapp.clusters.kubectl import kubectl_path
from labapp.lib.placeholders import render


def build(folder) -> list[dict]:
    built = subprocess.run(
        [str(kubectl_path()), "kustomize", str(folder)], capture_output=True, text=True, check=True
    )
    return list(yaml.safe_load_all(built.stdout))


def test_rendered_overlay_uses_the_learners_namespace_and_keeps_other_names(tiny_lab, tmp_path):
    render_workspace(tiny_lab, {"shop": "shop-k7m2q"}, tmp_path)
    objects = {
        (o["kind"], o["metadata"]["name"]): o for o in build(tmp_path / "shop" / "configured")
    }

    # The Namespace is renamed where it is a resource and where it is patched.
    namespace = objects[("Namespace", "shop-k7m2q")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ("Namespace", "shop") not in objects
    # The Deployment, ConfigMap and Service share the namespace's name and keep it.
    deployment = objects[("Deployment", "shop")]
    assert deployment["metadata"]["namespace"] == "shop-k7m2q"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/shop:1.0"
    assert container["envFrom"] == [{"configMapRef": {"name": "shop"}}]
    configmap = objects[("ConfigMap", "shop")]
    assert configmap["metadata"]["namespace"] == "shop-k7m2q"
    assert configmap["data"] == {"GREETING": "hello"}  # the overlay's patch still applies
    assert objects[("Service", "shop")]["metadata"]["namespace"] == "shop-k7m2q"
    assert {o["metadata"].get("namespace") for k, o in objects.items() if k[0] != "Namespace"} == {
        "shop-k7m2q"
    }


def test_rendering_leaves_the_sources_untouched(tiny_lab, tmp_path):
    source = tiny_lab.workspace["shop"] / "base" / "kustomization.yaml"
    before = source.read_text()
    render_workspace(tiny_lab, {"shop": "shop-zz9"}, tmp_path)
    assert source.read_text() == before
    assert "namespace: shop-zz9" in (tmp_path / "shop/base/kustomization.yaml").read_text()


def test_text_and_commands_render_with_the_learners_names(tiny_lab):
    step = tiny_lab.step("recycle-pods")
    names = {"shop": "shop-k7m2q"}
    assert render(step.commands[0].run, names) == "kubectl -n shop-k7m2q delete pod --all"
    assert "kubectl -n shop-k7m2q delete pod --all" in render(step.text, names)


def test_the_listing_shows_what_the_learners_copy_holds(tiny_lab, tmp_path):
    """The lab page's Files panel: the same files, with the same text, as the
    workspace a worker renders, made in memory from the lab's folders."""
    names = {"shop": "shop-k7m2q"}
    listing = workspace_listing(tiny_lab, names)
    render_workspace(tiny_lab, names, tmp_path)
    on_disk = {
        path.relative_to(tmp_path).as_posix(): path.read_text()
        for path in tmp_path.rglob("*")
        if path.is_file()
    }
    assert {f.path: f.text for folder in listing for f in folder.files} == on_disk
    folders = {folder.path: folder for folder in listing}
    assert set(folders) == {"shop/base", "shop/configured", "shop/privileged", "shop/restricted"}
    assert all(folder.kustomization for folder in listing)
    namespace = next(f for f in folders["shop/restricted"].files if f.name == "namespace.yaml")
    assert "name: shop-k7m2q" in namespace.text  # the learner's own name


def test_the_listing_reads_nothing_through_a_symbolic_link(lab_copy, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kustomization.yaml").write_text("resources: []\n")
    base = lab_copy.workspace_file("shop/base")
    (base / "linked.yaml").symlink_to(secret)
    (base / "linked-folder").symlink_to(outside, target_is_directory=True)
    listing = workspace_listing(get_lab("tiny"), {"shop": "shop-x"})
    paths = [f.path for folder in listing for f in folder.files]
    assert "shop/base/linked.yaml" not in paths
    assert not [p for p in paths if "linked-folder" in p]
    assert "hunter2" not in "".join(f.text for folder in listing for f in folder.files)
