"""Lab commands must be ones a learner may run, and their folders must exist."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from labapp.shell.parse import CommandRefused, Pipeline, parse_command

_PATH_FLAGS = {"-k": "kustomize", "--kustomize": "kustomize", "-f": "file", "--filename": "file"}


def command_problems(command: str, workspace: dict[str, Path]) -> list[str]:
    try:
        pipeline = parse_command(command)
    except CommandRefused as exc:
        return [f"the restricted shell refuses this command: {exc.reason}"]
    problems = []
    for flag, value in kubectl_paths(pipeline):
        problem = _path_problem(flag, value, workspace)
        if problem:
            problems.append(problem)
    return problems


def kubectl_paths(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(flag, path) for every -k/-f given to kubectl with a literal value."""
    found = []
    for stage in pipeline.stages:
        if stage.program != "kubectl":
            continue
        words = [
            "".join(p for p in word if isinstance(p, str))
            if all(isinstance(p, str) for p in word)
            else None
            for word in stage.words
        ]
        for index, word in enumerate(words):
            if word is None:
                continue
            flag, _, inline = word.partition("=")
            if flag in _PATH_FLAGS:
                value = inline or (words[index + 1] if index + 1 < len(words) else None)
                if value:
                    found.append((flag, value))
    return found


def _path_problem(flag: str, value: str, workspace: dict[str, Path]) -> str | None:
    if value == "-":
        return None
    parts = PurePosixPath(value).parts
    folder = parts[0] if parts else ""
    if folder not in workspace:
        known = ", ".join(sorted(workspace)) or "none"
        return f"{flag} {value}: {folder!r} is not a workspace folder (declared: {known})"
    source = workspace[folder].joinpath(*parts[1:])
    if _PATH_FLAGS[flag] == "kustomize":
        if not source.is_dir():
            return f"{flag} {value}: kustomize folder {source} does not exist"
        if not any(
            (source / name).is_file()
            for name in ("kustomization.yaml", "kustomization.yml", "Kustomization")
        ):
            return f"{flag} {value}: {source} has no kustomization.yaml"
    elif not source.exists():
        return f"{flag} {value}: {source} does not exist"
    return None
