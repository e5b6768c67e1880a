"""Bring a fresh sandbox to a lab's starting state (admin credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from labapp.catalog.spec import LabSpec
from labapp.checks.evaluate import evaluate_step
from labapp.clusters.objects import ApiReader
from labapp.lib.placeholders import render
from labapp.shell.command import describe_failure, run_command_line
from labapp.shell.execute import ToolPaths


def run_lab_setup(
    lab: LabSpec,
    *,
    namespaces: Mapping[str, str],
    workspace: Path,
    admin_kubeconfig: Path,
    tools: ToolPaths,
) -> list[str]:
    """Run the setup commands, then require the setup checks to pass. Returns problems."""
    problems = []
    for command in lab.setup:
        result = run_command_line(
            render(command.run, namespaces),
            tools=tools,
            kubeconfig=admin_kubeconfig,
            workdir=workspace,
            timeout=120,
        )
        if result.exit_code != 0:
            problems.append(f"setup command `{command.run}` failed: {describe_failure(result)}")
    if problems:
        return problems
    for outcome in evaluate_step(
        lab.setup_checks, namespaces=namespaces, reader=ApiReader(admin_kubeconfig)
    ):
        if not outcome.passed:
            problems.append(f"setup check did not pass: {outcome.message()}")
    return problems
