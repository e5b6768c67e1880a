"""A learner's own copy of a lab's kustomize folders, with their namespaces.

Renaming is structural, never a text search-and-replace: `assets` is also
the name of a Deployment, a ConfigMap and part of an image name, and only
namespace references may change. What changes:
  - `namespace:` in kustomization files;
  - `metadata.name` of Namespace objects (resources and patches alike);
  - `metadata.namespace` of any object.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
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
    text = path.read_text()
    renamed = renamed_text(text, namespaces, is_kustomization=path.name in KUSTOMIZATION_NAMES)
    if renamed != text:
        path.write_text(renamed)


def renamed_text(text: str, namespaces: Mapping[str, str], *, is_kustomization: bool) -> str:
    """A YAML file's text as the learner's workspace holds it: `text` itself when
    no namespace reference changes, else the documents dumped again."""
    documents = list(yaml.safe_load_all(text))
    changed = False
    for doc in documents:
        if isinstance(doc, dict):
            changed |= _rename_document(doc, namespaces, is_kustomization)
    return yaml.safe_dump_all(documents, sort_keys=False) if changed else text


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


# What the lab page's Files panel shows of a file, at most: lab folders hold
# short manifests, and a page must stay small.
LISTED_FILE_MAX_BYTES = 64_000


@dataclass(frozen=True)
class WorkspaceFile:
    path: str  # in the learner's workspace: "assets/base/namespace.yaml"
    name: str  # "namespace.yaml"
    text: str  # with the learner's names, as `render_workspace` writes it


@dataclass(frozen=True)
class WorkspaceFolder:
    path: str  # in the learner's workspace, as commands name it: "assets/base"
    files: tuple[WorkspaceFile, ...]
    kustomization: bool  # `kubectl kustomize PATH` builds it


def workspace_listing(lab: LabSpec, namespaces: Mapping[str, str]) -> list[WorkspaceFolder]:
    """Every folder of `lab`'s workspace that holds files, with their text as the
    learner's copy has it (the same renaming as `render_workspace`), rendered in
    memory: the web process may have no copy of the workspace. Only what lies in
    the lab's own folders is read: nothing reached through a symbolic link, and no
    path that a request chose."""
    folders = []
    for name, source in sorted(lab.workspace.items()):
        root = source.resolve()
        for directory in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if not _inside(directory, root):
                continue
            files = tuple(
                _listed_file(path, f"{name}/{path.relative_to(root).as_posix()}", namespaces)
                for path in sorted(directory.iterdir())
                if path.is_file() and not path.is_symlink() and _inside(path, root)
            )
            if files:
                relative = directory.relative_to(root).as_posix()
                folders.append(
                    WorkspaceFolder(
                        path=name if relative == "." else f"{name}/{relative}",
                        files=files,
                        kustomization=any(f.name in KUSTOMIZATION_NAMES for f in files),
                    )
                )
    return folders


def _inside(path: Path, root: Path) -> bool:
    """`path` (under the resolved `root`) is reached through no symbolic link."""
    here = root
    for part in path.relative_to(root).parts:
        here = here / part
        if here.is_symlink():
            return False
    return True


def _listed_file(path: Path, shown: str, namespaces: Mapping[str, str]) -> WorkspaceFile:
    raw = path.read_bytes()
    if len(raw) > LISTED_FILE_MAX_BYTES:
        text = f"# ({len(raw)} bytes: too long to show here)"
    else:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = "# not a text file"
        else:
            if path.suffix in (".yaml", ".yml") or path.name in KUSTOMIZATION_NAMES:
                # A file YAML cannot read is shown as it is; kubectl will name the problem.
                with contextlib.suppress(yaml.YAMLError):
                    text = renamed_text(
                        text, namespaces, is_kustomization=path.name in KUSTOMIZATION_NAMES
                    )
    return WorkspaceFile(path=shown, name=path.name, text=text)
