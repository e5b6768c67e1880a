"""Rehearse a lab against fresh sandboxes, and prove five things:

1. the solution passes every step;
2. every alternative passes its step;
3. every mistake never passes its step, and the check it names ends failing
   with the mistake's message;
4. every check fails before its step, unless it declares why it may already
   hold (`already_holds`); one that errors is broken;
5. the seed page's commands, mapped to the learner's namespace and folders,
   work in the command box at their steps.

Each walk (the solution, each alternative, each mistake, the seed page) takes a
fresh sandbox of its own, so none can lean on another's leftovers; walks run
side by side (`jobs`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from labapp.catalog.rehearsal_paths import (
    Ground,
    rehearsal_sandbox,
    walk_alternative,
    walk_mistake,
    walk_seed,
    walk_solution,
)
from labapp.catalog.rehearsal_report import CheckRow, LabReport, StepReport, format_report
from labapp.catalog.spec import LabSpec
from labapp.clusters.client import nodes_are_simulated
from labapp.shell.execute import ToolPaths

__all__ = [
    "CheckRow",
    "LabReport",
    "StepReport",
    "format_report",
    "rehearsal_sandbox",
    "rehearse_lab",
]

Say = Callable[[str], None]


def rehearse_lab(
    lab: LabSpec, *, kubeconfig: Path, tools: ToolPaths, say: Say = print, jobs: int = 3
) -> LabReport:
    ground = Ground(lab, kubeconfig, tools, nodes_are_simulated(kubeconfig))
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="rehearse") as pool:
        solution = pool.submit(walk_solution, ground)
        tried = [
            (index, pool.submit(walk_alternative, ground, index, alternative))
            for index, step in enumerate(lab.steps)
            for alternative in step.alternatives
        ]
        tried += [
            (index, pool.submit(walk_mistake, ground, index, mistake))
            for index, step in enumerate(lab.steps)
            for mistake in step.mistakes
        ]
        seed: Future | None = pool.submit(walk_seed, ground) if lab.seed else None
        walked = solution.result()
        report = LabReport(lab.id, walked.namespaces)
        report.setup_problems, report.steps = walked.setup_problems, walked.steps
        report.seed_page = lab.seed.page if lab.seed else ""
        report.sandboxes = 1 + len(tried) + (1 if seed else 0)
        for command in dict.fromkeys(walked.skipped):
            say(f"  (skipped on simulated nodes: {command})")
        results = [(index, future.result()) for index, future in tried]
        if seed is not None:
            results += seed.result()
    for index, result in results:
        if index < len(report.steps):
            report.steps[index].paths.append(result)
        else:
            report.setup_problems += result.problems
    return report
