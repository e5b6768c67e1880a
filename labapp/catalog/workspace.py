"""A learner's own copy of a lab's kustomize folders, with their namespaces.

Renaming is structural, never a text search-and-replace: `assets` is also
the name of a Deployment, a ConfigMap and part of an image name, and only
namespace references may change. What changes:
  - `namespace:` in kustomization files;
  - `metadata.name` of Namespace objects (resources and patches alike);
  - `metadata.namespace` of any object.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import yaml

from labapp.catalog.spec import LabSpec

KUSTOMIZATION_NAMES = {"kustomization.yaml", "kustomization.yml", "Kustomization"}


def render_workspace(lab: LabSpec, namespaces: Mapping[str, str], dest: Path) -> Path:
    """(Re)create `dest` with every workspace folder of `lab`, renamed. Returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder, source in lab.workspace.items():
        target = dest / folder
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, symlinks=False)
        for path in sorted(target.rglob("*")):
            if path.suffix in (".yaml", ".yml") or path.name in KUSTOMIZATION_NAMES:
                _rename_in_file(path, namespaces)
    return dest


def _rename_in_file(path: Path, namespaces: Mapping[str, str]) -> None:
    documents = list(yaml.safe_load_all(path.read_text()))
    is_kustomization = path.name in KUSTOMIZATION_NAMES
    changed = False
    for doc in documents:
        if isinstance(doc, dict):
            changed |= _rename_document(doc, namespaces, is_kustomization)
    if changed:
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def _rename_document(doc: dict, namespaces: Mapping[str, str], is_kustomization: bool) -> bool:
    changed = False
    if is_kustomization and doc.get("namespace") in namespaces:
        doc["namespace"] = namespaces[doc["namespace"]]
        changed = True
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        if doc.get("kind") == "Namespace" and meta.get("name") in namespaces:
            meta["name"] = namespaces[meta["name"]]
            changed = True
        if meta.get("namespace") in namespaces:
            meta["namespace"] = namespaces[meta["namespace"]]
            changed = True
    return changed
