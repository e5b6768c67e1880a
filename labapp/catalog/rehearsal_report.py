"""What a rehearsal found, and its printed report.

Per step: each check before and after the solution, then each alternative, each
mistake and each seed command. The last line sums up the five proofs: the
solution passes, every alternative passes, every mistake stays failing with its
message, every check fails before its step (or says why it may not), and the
seed page's commands work in the command box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labapp.checks.outcome import Outcome, Status


@dataclass
class CheckRow:
    title: str
    before: Outcome
    after: Outcome | None = None
    # Why this check may already hold before its step ("" when it must fail there).
    holds_reason: str = ""

    @property
    def before_violation(self) -> str | None:
        if self.before.status is Status.ERROR:
            return f"errored before the step: {self.before.detail}"
        if self.before.passed and not self.holds_reason:
            return (
                "already passes before its step, so it proves nothing; make it fail there, "
                "or say why it may hold with `already_holds`"
            )
        return None

    @property
    def after_violation(self) -> str | None:
        if self.after is None:
            return None
        if self.after.status is Status.ERROR:
            return f"errored after the step: {self.after.detail}"
        if self.after.status is Status.FAIL:
            return f"failed after the step: {self.after.message()}"
        return None

    @property
    def violations(self) -> list[str]:
        return [v for v in (self.before_violation, self.after_violation) if v]


@dataclass
class PathResult:
    """One alternative, mistake or seed command tried at a step."""

    kind: str  # "alternative", "mistake", "seed"
    title: str
    problems: list[str] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class StepReport:
    step_id: str
    title: str
    rows: list[CheckRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the solution's own (commands)
    paths: list[PathResult] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, kind: str) -> list[PathResult]:
        return [path for path in self.paths if path.kind == kind]

    @property
    def solution_ok(self) -> bool:
        return not self.problems and not any(row.after_violation for row in self.rows)

    @property
    def ok(self) -> bool:
        return (
            self.solution_ok
            and not any(row.before_violation for row in self.rows)
            and all(path.ok for path in self.paths)
        )


@dataclass
class LabReport:
    lab_id: str
    namespaces: dict[str, str]
    setup_problems: list[str] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    seed_page: str = ""
    sandboxes: int = 0

    @property
    def ok(self) -> bool:
        return not self.setup_problems and bool(self.steps) and all(s.ok for s in self.steps)

    def tally(self) -> dict[str, tuple[int, int]]:
        """(proven, total) for each of the five things rehearsal proves."""
        rows = [row for step in self.steps for row in step.rows]

        def paths(kind: str) -> tuple[int, int]:
            found = [path for step in self.steps for path in step.of(kind)]
            return sum(path.ok for path in found), len(found)

        return {
            "solution": (sum(s.solution_ok for s in self.steps), len(self.steps)),
            "alternatives": paths("alternative"),
            "mistakes": paths("mistake"),
            "fail before": (sum(not row.before_violation for row in rows), len(rows)),
            "seed commands": paths("seed"),
        }


def format_report(report: LabReport) -> str:
    titles = [row.title for step in report.steps for row in step.rows]
    width = min(max(map(len, titles), default=20), 100)
    lines = [
        f"== {report.lab_id}  (namespaces: "
        + ", ".join(f"{k}->{v}" for k, v in report.namespaces.items())
        + f"; {report.sandboxes} fresh sandboxes)"
    ]
    lines += [f"   SETUP PROBLEM: {p}" for p in report.setup_problems]
    for index, step in enumerate(report.steps, 1):
        mark = "ok" if step.ok else "VIOLATION"
        lines.append(
            f"-- step {index}/{len(report.steps)} {step.step_id}: {step.title} "
            f"[{mark}, {step.seconds:.1f}s]"
        )
        lines.append(f"   {'CHECK':<{width}} {'BEFORE':<8}{'AFTER':<7}{'TIME':>7}")
        for row in step.rows:
            title = row.title if len(row.title) <= width else row.title[: width - 1] + "…"
            before = row.before.status.value + ("*" if row.holds_reason else "")
            after = row.after.status.value if row.after else "-"
            seconds = f"{row.after.seconds:.2f}s" if row.after else ""
            lines.append(f"   {title:<{width}} {before:<8}{after:<7}{seconds:>7}")
            if row.holds_reason and row.before.passed:
                lines.append(f"     * may already hold: {row.holds_reason}")
            lines += [f"     ! {violation}" for violation in row.violations]
        lines += [f"     ! {p}" for p in step.problems]
        for path in step.paths:
            verdict = "ok" if path.ok else "VIOLATION"
            note = f": {path.note}" if path.note else ""
            lines.append(f"   {path.kind} {path.title} [{verdict}, {path.seconds:.1f}s]{note}")
            lines += [f"     ! {p}" for p in path.problems]
    tally = report.tally()
    summary = ", ".join(f"{name} {done}/{total}" for name, (done, total) in tally.items())
    if report.seed_page:
        summary += f" (seed: {report.seed_page})"
    lines.append(f"== {report.lab_id}: {'PASS' if report.ok else 'FAIL'}  ({summary})")
    return "\n".join(lines)
