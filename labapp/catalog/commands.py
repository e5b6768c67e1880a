"""Lab commands must be ones a learner may run, and their folders must exist."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import PathArg, kubectl_path_args

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def command_problems(command: str, workspace: dict[str, Path]) -> list[str]:
    try:
        pipeline = parse_command(command)
    except CommandRefused as exc:
        return [f"the restricted shell refuses this command: {exc.reason}"]
    problems = []
    for stage in pipeline.stages:
        if stage.program != "kubectl":
            continue
        # The policy reads kubectl's flags, so `-f`, `-kDIR` and `--from-file=k=PATH`
        # are found here exactly as they are judged when the command runs.
        for path_arg in kubectl_path_args(stage.static_args()):
            problem = _path_problem(path_arg, workspace)
            if problem:
                problems.append(problem)
    return problems


def _path_problem(arg: PathArg, workspace: dict[str, Path]) -> str | None:
    where = f"{arg.flag} {arg.path}"
    parts = PurePosixPath(arg.path).parts
    folder = parts[0] if parts else ""
    if folder not in workspace:
        known = ", ".join(sorted(workspace)) or "none"
        return f"{where}: {folder!r} is not a workspace folder (declared: {known})"
    source = workspace[folder].joinpath(*parts[1:])
    if arg.kustomization:
        if not source.is_dir():
            return f"{where}: kustomize folder {source} does not exist"
        if not any((source / name).is_file() for name in _KUSTOMIZATION_FILES):
            return f"{where}: {source} has no kustomization.yaml"
    elif not source.exists():
        return f"{where}: {source} does not exist"
    return None
