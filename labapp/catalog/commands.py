"""Lab commands must be ones a learner may run, and their folders must exist."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import LAB_VALIDATION, PathArg, ShellPolicy, kubectl_path_args

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def command_problems(
    command: str, workspace: dict[str, Path], *, exec_commands: Sequence[str] | None = None
) -> list[str]:
    """`exec_commands`: what the step declares `kubectl exec` may run, judged as the
    shell judges a learner's command. None: the caller matches each exec against
    the step's declaration itself (the loader does, naming the step's line), so any
    one command passes here; every other rule still applies."""
    policy = LAB_VALIDATION if exec_commands is None else ShellPolicy.for_lab(exec_commands)
    try:
        pipeline = parse_command(command, policy)
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
