"""The lab page's Files panel: the learner's workspace, read-only, highlighted.

The files come from `catalog.workspace.workspace_listing` (rendered in memory
with the learner's names: the web process may have no copy of the workspace),
highlighted on the server with Pygments. Like the steps' text, a listing is
made once per lab and namespace mapping in a process, not once per page view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, YamlLexer

from labapp.catalog.spec import LabSpec
from labapp.catalog.workspace import KUSTOMIZATION_NAMES, WorkspaceFolder, workspace_listing

LISTINGS_KEPT = 1024
# Only CSS classes in the markup (their colours are in static/css/app.css, light
# and dark); `nowrap`: the template draws the <pre>.
_FORMATTER = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class ShownFile:
    path: str
    name: str
    html: SafeString  # highlighted, escaped by Pygments
    lines: int


@dataclass(frozen=True)
class ShownFolder:
    path: str
    files: tuple[ShownFile, ...]
    kustomization: bool

    @property
    def preview_command(self) -> str:
        return f"kubectl kustomize {self.path}"


def lab_files(lab: LabSpec, namespaces: Mapping[str, str]) -> list[ShownFolder]:
    """The workspace's folders with their files, highlighted, once per process."""
    key = (lab.id, tuple(sorted(namespaces.items())))
    with _lock:
        found = _cache.get(key)
        if found is not None and found[0] is lab:
            _cache.move_to_end(key)
            return found[1]
    shown = [_shown(folder) for folder in workspace_listing(lab, namespaces)]
    with _lock:
        _cache[key] = (lab, shown)
        while len(_cache) > LISTINGS_KEPT:
            _cache.popitem(last=False)
    return shown


def _shown(folder: WorkspaceFolder) -> ShownFolder:
    files = []
    for file in folder.files:
        yaml_like = file.name.endswith((".yaml", ".yml")) or file.name in KUSTOMIZATION_NAMES
        lexer = YamlLexer() if yaml_like else TextLexer()
        html = highlight(file.text, lexer, _FORMATTER)
        files.append(
            ShownFile(
                path=file.path,
                name=file.name,
                html=mark_safe(html),  # Pygments escapes the text it marks up
                lines=file.text.count("\n") + (0 if file.text.endswith("\n") else 1),
            )
        )
    return ShownFolder(path=folder.path, files=tuple(files), kustomization=folder.kustomization)


_lock = threading.Lock()
_cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[LabSpec, list[ShownFolder]]] = (
    OrderedDict()
)
