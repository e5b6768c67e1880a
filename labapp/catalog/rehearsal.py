"""Rehearse a lab against a fresh sandbox: every check must fail before its
step and pass after it. A check that passes before the learner has done
anything proves nothing; one that errors is broken.
"""

from __future__ import annotations

import secrets
import string
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from labapp.catalog.setup import run_lab_setup
from labapp.catalog.spec import CommandSpec, LabSpec
from labapp.catalog.workspace import render_workspace
from labapp.checks.base import RunOutput
from labapp.checks.evaluate import evaluate_step
from labapp.checks.outcome import Outcome, Status
from labapp.clusters import isolation
from labapp.clusters.client import nodes_are_simulated
from labapp.clusters.objects import ApiReader
from labapp.lib.placeholders import render
from labapp.shell.command import describe_failure, run_command_line
from labapp.shell.execute import RunResult, ToolPaths

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class CheckRow:
    title: str
    before: Outcome
    after: Outcome | None = None

    @property
    def violation(self) -> str | None:
        if self.before.status is Status.ERROR:
            return f"errored before the step: {self.before.detail}"
        if self.after is None:
            return None
        if self.after.status is Status.ERROR:
            return f"errored after the step: {self.after.detail}"
        if self.after.status is Status.FAIL:
            return f"failed after the step: {self.after.message()}"
        return None


@dataclass
class StepReport:
    step_id: str
    title: str
    rows: list[CheckRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and not any(row.violation for row in self.rows)


@dataclass
class LabReport:
    lab_id: str
    namespaces: dict[str, str]
    setup_problems: list[str] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.setup_problems and all(step.ok for step in self.steps)


@dataclass(frozen=True)
class RehearsalSandbox:
    """A fresh, isolated sandbox: the learner's commands run with the learner's
    own token; setup and checks use admin credentials, as in a workshop."""

    namespaces: dict[str, str]
    workspace: Path
    admin_kubeconfig: Path
    learner_kubeconfig: Path


@contextmanager
def rehearsal_sandbox(lab: LabSpec, admin_kubeconfig: Path) -> Iterator[RehearsalSandbox]:
    sandbox_id = "r" + "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(5))
    namespaces = {name: f"{name}-{sandbox_id}" for name in lab.namespaces}
    with tempfile.TemporaryDirectory(prefix=f"rehearse-{lab.id}-") as home:
        workspace = render_workspace(lab, namespaces, Path(home) / "workspace")
        learner_kubeconfig = Path(home) / "kubeconfig"
        try:
            credentials = isolation.provision(
                admin_kubeconfig,
                sandbox_id=sandbox_id,
                namespaces=namespaces,
                token_seconds=3600,
                privileged_images=lab.privileged_images,
                exec_allowed=bool(lab.exec_commands),
            )
            learner_kubeconfig.write_text(credentials.kubeconfig)
            learner_kubeconfig.chmod(0o600)
            yield RehearsalSandbox(namespaces, workspace, admin_kubeconfig, learner_kubeconfig)
        finally:
            isolation.teardown(admin_kubeconfig, sandbox_id=sandbox_id, namespaces=namespaces)


Say = Callable[[str], None]


def rehearse_lab(
    lab: LabSpec, *, kubeconfig: Path, tools: ToolPaths, say: Say = print
) -> LabReport:
    simulated = nodes_are_simulated(kubeconfig)
    with rehearsal_sandbox(lab, kubeconfig) as sandbox:
        report = LabReport(lab.id, sandbox.namespaces)
        run = _runner(sandbox, tools)
        report.setup_problems = run_lab_setup(
            lab,
            namespaces=sandbox.namespaces,
            workspace=sandbox.workspace,
            admin_kubeconfig=sandbox.admin_kubeconfig,
            tools=tools,
        )
        if report.setup_problems:
            return report
        reader = ApiReader(kubeconfig)
        for step in lab.steps:
            started = time.monotonic()
            step_report = StepReport(step.id, step.title)
            before = evaluate_step(
                step.checks, namespaces=sandbox.namespaces, reader=reader, wait=False
            )
            step_report.rows = [CheckRow(o.title, o) for o in before]
            if all(o.passed for o in before):
                step_report.problems.append(
                    "every check passes before the step is done, so the checks prove nothing"
                )
            outputs: list[RunOutput] = []
            for command in step.commands:
                if command.real_nodes_only and simulated:
                    say(f"  (skipped on simulated nodes: {command.run})")
                    continue
                last = run(command)
                outputs.append(RunOutput(last.stdout, last.stderr))
                if last.exit_code != 0:
                    step_report.problems.append(
                        f"command `{command.run}` failed: {describe_failure(last)}"
                    )
            after = evaluate_step(
                step.checks,
                namespaces=sandbox.namespaces,
                reader=reader,
                outputs=outputs,
            )
            for row, outcome in zip(step_report.rows, after, strict=True):
                row.after = outcome
            step_report.seconds = time.monotonic() - started
            report.steps.append(step_report)
        return report


def _runner(sandbox: RehearsalSandbox, tools: ToolPaths) -> Callable[[CommandSpec], RunResult]:
    """Runs step commands as the learner, with the learner's own token."""

    def run(command: CommandSpec) -> RunResult:
        return run_command_line(
            render(command.run, sandbox.namespaces),
            tools=tools,
            kubeconfig=sandbox.learner_kubeconfig,
            workdir=sandbox.workspace,
            timeout=120,
        )

    return run


def format_report(report: LabReport) -> str:
    titles = [row.title for step in report.steps for row in step.rows]
    width = min(max(map(len, titles), default=20), 110)
    lines = [
        f"== {report.lab_id}  (namespaces: "
        + ", ".join(f"{k}->{v}" for k, v in report.namespaces.items())
        + ")"
    ]
    lines += [f"   SETUP PROBLEM: {p}" for p in report.setup_problems]
    for index, step in enumerate(report.steps, 1):
        mark = "ok" if step.ok else "VIOLATION"
        lines.append(
            f"-- step {index}/{len(report.steps)} {step.step_id}: {step.title} "
            f"[{mark}, {step.seconds:.1f}s]"
        )
        lines.append(f"   {'CHECK':<{width}} {'BEFORE':<7}{'AFTER':<7}{'TIME':>7}")
        for row in step.rows:
            title = row.title if len(row.title) <= width else row.title[: width - 1] + "…"
            after = row.after.status.value if row.after else "-"
            seconds = f"{row.after.seconds:.2f}s" if row.after else ""
            lines.append(f"   {title:<{width}} {row.before.status.value:<7}{after:<7}{seconds:>7}")
            if row.violation:
                lines.append(f"     ! {row.violation}")
        lines += [f"     ! {p}" for p in step.problems]
    lines.append(f"== {report.lab_id}: {'PASS' if report.ok else 'FAIL'}")
    return "\n".join(lines)
