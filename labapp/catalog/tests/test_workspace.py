"""A learner's copy of the kustomize folders names their own namespaces, and only those."""

from __future__ import annotations

import subprocess

import yaml
from django.conf import settings

from labapp.catalog.loader import load_lab
from labapp.catalog.workspace import render_workspace
from labapp.clusters.kubectl import kubectl_path
from labapp.lib.placeholders import render


def build(folder) -> list[dict]:
    built = subprocess.run(
        [str(kubectl_path()), "kustomize", str(folder)], capture_output=True, text=True, check=True
    )
    return list(yaml.safe_load_all(built.stdout))


def test_rendered_overlay_uses_the_learners_namespace_and_keeps_other_names(tmp_path):
    lab = load_lab(settings.LAB_STEPS_DIR / "pss-baseline")
    render_workspace(lab, {"assets": "assets-k7m2q"}, tmp_path)
    objects = {
        (o["kind"], o["metadata"]["name"]): o
        for o in build(tmp_path / "assets" / "baseline-namespace")
    }

    namespace = objects[("Namespace", "assets-k7m2q")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ("Namespace", "assets") not in objects
    deployment = objects[("Deployment", "assets")]  # the Deployment keeps its own name
    assert deployment["metadata"]["namespace"] == "assets-k7m2q"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "public.ecr.aws/aws-containers/retail-store-sample-assets:0.4.0"
    assert container["securityContext"]["privileged"] is True
    assert objects[("ConfigMap", "assets")]["metadata"]["namespace"] == "assets-k7m2q"


def test_rendering_leaves_the_sources_untouched(tmp_path):
    lab = load_lab(settings.LAB_STEPS_DIR / "pss-baseline")
    source = lab.workspace["assets"] / "base" / "kustomization.yaml"
    before = source.read_text()
    render_workspace(lab, {"assets": "assets-zz9"}, tmp_path)
    assert source.read_text() == before
    assert "namespace: assets-zz9" in (tmp_path / "assets/base/kustomization.yaml").read_text()


def test_text_and_commands_render_with_the_learners_names():
    lab = load_lab(settings.LAB_STEPS_DIR / "pss-baseline")
    step = lab.step("recycle-pods")
    names = {"assets": "assets-k7m2q"}
    assert render(step.commands[0].run, names) == "kubectl -n assets-k7m2q delete pod --all"
    assert "kubectl -n assets-k7m2q delete pod --all" in render(step.text, names)
