"""The walks a rehearsal takes, each in a fresh sandbox of its own.

A walk brings its sandbox to the lab's start, replays the steps before the one
it tries (each replayed step must pass, as a learner's would), then tries one
thing there: the solution, an alternative, a mistake, or the seed page's
commands. Learners' commands run with the learner's own token through the
restricted shell, exactly as the command box runs them; checks read the
cluster with admin credentials, as the tracker does.
"""

from __future__ import annotations

import secrets
import string
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labapp.catalog.diagnosis import unwrap
from labapp.catalog.rehearsal_report import CheckRow, PathResult, StepReport
from labapp.catalog.seed import map_seed_command
from labapp.catalog.setup import run_lab_setup
from labapp.catalog.spec import AlternativeSpec, CommandSpec, LabSpec, MistakeSpec, StepSpec
from labapp.catalog.workspace import render_workspace
from labapp.checks.base import RunOutput
from labapp.checks.evaluate import evaluate_step
from labapp.checks.outcome import Outcome, Status
from labapp.clusters import isolation
from labapp.clusters.objects import ApiReader
from labapp.lib.placeholders import render
from labapp.shell.command import describe_failure, run_command_line
from labapp.shell.execute import ToolPaths
from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import ShellPolicy

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
POLL = 0.5


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


@dataclass(frozen=True)
class Ground:
    """What every walk of one lab shares."""

    lab: LabSpec
    kubeconfig: Path
    tools: ToolPaths
    simulated: bool


class SetupFailed(Exception):
    pass


class Walk:
    """One sandbox walking the lab as a learner."""

    def __init__(self, ground: Ground, sandbox: RehearsalSandbox) -> None:
        self.ground, self.sandbox = ground, sandbox
        self.reader = ApiReader(ground.kubeconfig)
        self.policy = ShellPolicy.for_lab(ground.lab.exec_commands)
        self.skipped: list[str] = []

    def setup(self) -> None:
        problems = run_lab_setup(
            self.ground.lab,
            namespaces=self.sandbox.namespaces,
            workspace=self.sandbox.workspace,
            admin_kubeconfig=self.sandbox.admin_kubeconfig,
            tools=self.ground.tools,
        )
        if problems:
            raise SetupFailed("; ".join(problems))

    def run(self, commands: Sequence[CommandSpec]) -> tuple[list[RunOutput], list[str]]:
        """Run as the learner; returns what each run printed and the failures."""
        outputs: list[RunOutput] = []
        problems: list[str] = []
        for command in commands:
            if command.real_nodes_only and self.ground.simulated:
                self.skipped.append(command.run)
                continue
            result = run_command_line(
                render(command.run, self.sandbox.namespaces),
                tools=self.ground.tools,
                kubeconfig=self.sandbox.learner_kubeconfig,
                workdir=self.sandbox.workspace,
                timeout=120,
                policy=self.policy,
            )
            outputs.append(RunOutput(result.stdout, result.stderr))
            if result.exit_code != 0:
                problems.append(f"command `{command.run}` failed: {describe_failure(result)}")
        return outputs, problems

    def refusals(self, command: str) -> list[str]:
        """Why the command box would refuse this line, if it would (without running it)."""
        try:
            parse_command(render(command, self.sandbox.namespaces), self.policy)
        except CommandRefused as exc:
            return [f"the command box refuses it: {exc}"]
        return []

    def judge(self, step: StepSpec, outputs: Sequence[RunOutput], *, wait: bool) -> list[Outcome]:
        return evaluate_step(
            step.checks,
            namespaces=self.sandbox.namespaces,
            reader=self.reader,
            outputs=outputs,
            wait=wait,
        )

    def do_step(self, step: StepSpec) -> list[str]:
        """Do a step with its solution; it must pass, as it did for the learner."""
        outputs, problems = self.run(step.commands)
        failed = [o for o in self.judge(step, outputs, wait=True) if not o.passed]
        if problems or failed:
            why = problems + [o.message() for o in failed]
            return [f"step {step.id!r} did not pass with its solution: " + "; ".join(why)]
        return []

    def replay(self, upto: int) -> list[str]:
        """Do the steps before `upto` with their solutions; each must pass."""
        for step in self.ground.lab.steps[:upto]:
            if problems := self.do_step(step):
                return [f"replaying: {problems[0]}"]
        return []


@contextmanager
def walk(ground: Ground) -> Iterator[Walk]:
    with rehearsal_sandbox(ground.lab, ground.kubeconfig) as sandbox:
        yield Walk(ground, sandbox)


@dataclass
class SolutionWalk:
    namespaces: dict[str, str]
    steps: list[StepReport]
    setup_problems: list[str]
    skipped: list[str]


def walk_solution(ground: Ground) -> SolutionWalk:
    """The lab as written: each check before and after its step."""
    reports: list[StepReport] = []
    with walk(ground) as learner:
        namespaces = learner.sandbox.namespaces
        try:
            learner.setup()
        except SetupFailed as exc:
            return SolutionWalk(namespaces, [], [str(exc)], [])
        for step in ground.lab.steps:
            started = time.monotonic()
            report = StepReport(step.id, step.title)
            before = learner.judge(step, (), wait=False)
            report.rows = [
                CheckRow(o.title, o, holds_reason=step.holds_before_reason(i))
                for i, o in enumerate(before)
            ]
            outputs, report.problems = learner.run(step.commands)
            after = learner.judge(step, outputs, wait=True)
            for row, outcome in zip(report.rows, after, strict=True):
                row.after = outcome
            report.seconds = time.monotonic() - started
            reports.append(report)
        return SolutionWalk(namespaces, reports, [], learner.skipped)


def walk_alternative(ground: Ground, index: int, alternative: AlternativeSpec) -> PathResult:
    step = ground.lab.steps[index]
    result = PathResult("alternative", f'"{alternative.title}"')
    started = time.monotonic()
    with walk(ground) as learner:
        if not _arrive(learner, index, result):
            return result
        outputs, result.problems = learner.run(alternative.commands)
        for outcome in learner.judge(step, outputs, wait=True):
            if not outcome.passed:
                result.problems.append(f"the step does not pass: {outcome.message()}")
    result.seconds = time.monotonic() - started
    return result


def walk_mistake(ground: Ground, index: int, mistake: MistakeSpec) -> PathResult:
    """The mistake must never pass the step while the cluster settles, and the check
    it names must end failing with the mistake's message."""
    step = ground.lab.steps[index]
    result = PathResult("mistake", f'"{mistake.title}"', note=f'keeps "{mistake.check}" failing')
    started = time.monotonic()
    with walk(ground) as learner:
        if not _arrive(learner, index, result):
            return result
        outputs, _ = learner.run(mistake.commands)  # a mistake may well exit non-zero
        deadline = time.monotonic() + mistake.settle
        while True:
            outcomes = learner.judge(step, outputs, wait=False)
            if all(o.passed for o in outcomes):
                result.problems.append("the step passes after this mistake")
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL)
        result.problems += _named_check_problems(step, mistake, outcomes)
    result.seconds = time.monotonic() - started
    return result


def _named_check_problems(
    step: StepSpec, mistake: MistakeSpec, outcomes: Sequence[Outcome]
) -> list[str]:
    for check, outcome in zip(step.checks, outcomes, strict=True):
        if unwrap(check).title != mistake.check:
            continue
        if outcome.status is Status.PASS:
            return [f"check {mistake.check!r} passes after this mistake"]
        if outcome.status is Status.ERROR:
            return [f"check {mistake.check!r} could not run: {outcome.detail}"]
        if outcome.detail != mistake.message:
            shown = f"it says {outcome.detail!r}" if outcome.detail else "it names no mistake"
            return [f"check {mistake.check!r} fails, but {shown} (`when` did not hold)"]
        return []
    return [f"the step has no check {mistake.check!r}"]


def walk_seed(ground: Ground) -> list[tuple[int, PathResult]]:
    """The seed page's commands, mapped, typed at their steps (steps the page does
    not have are done with their solutions): each command must work, and each step
    the page covers must pass with the page's commands alone."""
    lab, seed = ground.lab, ground.lab.seed
    assert seed is not None
    found: list[tuple[int, PathResult]] = []
    with walk(ground) as learner:
        try:
            learner.setup()
        except SetupFailed as exc:
            return [(0, PathResult("seed", "setup", [f"setup failed: {exc}"]))]
        for index, step in enumerate(lab.steps):
            commands = [c for c in seed.commands if c.step == step.id]
            if not commands:
                # A step the page does not have: done with its solution.
                if problems := learner.do_step(step):
                    found.append((index, PathResult("seed", f"solution of {step.id!r}", problems)))
                continue
            outputs: list[RunOutput] = []
            for command in commands:
                started = time.monotonic()
                mapped = map_seed_command(command.run, lab.namespaces, seed.folders)
                result = PathResult("seed", f"`{command.run}`", note=f"typed as `{mapped}`")
                if command.real_nodes_only and ground.simulated:
                    result.problems = learner.refusals(mapped)
                    result.note += "; the shell accepts it (not run: the nodes are simulated)"
                else:
                    ran, result.problems = learner.run([CommandSpec(mapped)])
                    outputs += ran
                result.seconds = time.monotonic() - started
                found.append((index, result))
            started = time.monotonic()
            passed = PathResult("seed", f"the page's commands pass step {step.id!r}")
            for outcome in learner.judge(step, outputs, wait=True):
                if not outcome.passed:
                    passed.problems.append(outcome.message())
            passed.seconds = time.monotonic() - started
            found.append((index, passed))
    return found


def _arrive(learner: Walk, index: int, result: PathResult) -> bool:
    """Bring the walk to the start of step `index`; False (with why) if it cannot."""
    try:
        learner.setup()
    except SetupFailed as exc:
        result.problems.append(f"setup failed: {exc}")
        return False
    result.problems += learner.replay(index)
    return not result.problems
