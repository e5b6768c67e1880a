"""The seed page a lab comes from, and how its commands map into a sandbox.

The page's commands are kept verbatim in the lab file. Mapped, they must work in
the command box: its namespace (`-n assets`, `namespace assets`) becomes the
learner's (`{{ ns.assets }}`), and its folders (`/workspace/modules/...`) the
learner's workspace folders. Rehearsal runs them at their steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from labapp.catalog.spec import SeedCommand, SeedSpec
from labapp.catalog.yamlsource import LineDict, LineList

SEED_KEYS = {"page", "folders", "commands"}
SEED_COMMAND_KEYS = {"step", "run", "real_nodes_only"}

Problem = Callable[[int | None, str], None]


def map_seed_command(run: str, namespaces: Iterable[str], folders: Mapping[str, str]) -> str:
    """The command as a learner types it in this lab: namespaces as placeholders,
    the page's folders as workspace folders. Names that are not namespaces (the
    Deployment `assets` in `get deployment -n assets assets`) stay as they are."""
    mapped = run
    for name in sorted(namespaces, key=len, reverse=True):
        placeholder = "{{ ns." + name + " }}"
        word = re.escape(name)
        end = r"(?=[\s)]|$)"
        mapped = re.sub(
            rf"(?<!\S)(-n|--namespace)(=|\s+){word}{end}", rf"\1\2{placeholder}", mapped
        )
        mapped = re.sub(rf"(?<!\S)-n{word}{end}", f"-n{placeholder}", mapped)
        mapped = re.sub(rf"(?<!\S)(namespaces?|ns)(\s+){word}{end}", rf"\1\2{placeholder}", mapped)
    for prefix, folder in sorted(folders.items(), key=lambda item: -len(item[0])):
        mapped = re.sub(rf"(?<=[\s=]){re.escape(prefix.rstrip('/'))}(?=/|\s|$)", folder, mapped)
    return mapped


def read_seed(
    raw: object,
    *,
    line: int,
    step_ids: set[str],
    workspace: Iterable[str],
    problem: Problem,
) -> SeedSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, LineDict):
        problem(line, "`seed` must be a mapping with page, folders and commands")
        return None
    for key in sorted(set(raw) - SEED_KEYS):
        problem(raw.line_of(key), f"unknown seed key {key!r}")
    page = raw.get("page")
    if not isinstance(page, str) or not page.strip():
        problem(raw.line_of("page"), "`seed.page` must name the page the lab comes from")
        page = ""
    folders = _folders(raw, set(workspace), problem)
    commands = _commands(raw, step_ids, problem)
    return SeedSpec(page=page.strip(), folders=folders, commands=commands)


def _folders(raw: LineDict, workspace: set[str], problem: Problem) -> dict[str, str]:
    value = raw.get("folders") or {}
    if not isinstance(value, LineDict):
        problem(raw.line_of("folders"), "`seed.folders` must map the page's folders to ours")
        return {}
    folders = {}
    for prefix, folder in value.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            problem(value.line_of(prefix), f"seed folder {prefix!r} must be an absolute path")
        elif folder not in workspace:
            known = ", ".join(sorted(workspace)) or "none"
            problem(
                value.line_of(prefix),
                f"seed folder {prefix!r} maps to {folder!r}, which is not a workspace folder "
                f"(declared: {known})",
            )
        else:
            folders[prefix] = str(folder)
    return folders


def _commands(raw: LineDict, step_ids: set[str], problem: Problem) -> tuple[SeedCommand, ...]:
    items = raw.get("commands")
    if not isinstance(items, LineList) or not items:
        problem(raw.line_of("commands"), "`seed.commands` must list the page's commands")
        return ()
    commands = []
    for index, item in enumerate(items):
        line = items.line_of(index)
        if not isinstance(item, LineDict):
            problem(line, "a seed command must be a mapping with `step` and `run`")
            continue
        for key in sorted(set(item) - SEED_COMMAND_KEYS):
            problem(item.line_of(key), f"unknown seed command key {key!r}")
        step, run = item.get("step"), item.get("run")
        if step not in step_ids:
            problem(item.line_of("step"), f"seed command names an unknown step {step!r}")
            continue
        if not isinstance(run, str) or not run.strip():
            problem(item.line_of("run"), "`run` must be the page's command, verbatim")
            continue
        real_nodes_only = item.get("real_nodes_only", False)
        commands.append(SeedCommand(str(step), run.strip(), bool(real_nodes_only), line))
    return tuple(commands)
