"""Per-workshop exports: one row per learner, lab and step."""

from __future__ import annotations

import csv
import datetime as dt
import io

from labapp.learning.models import LabProgress, Workshop

COLUMNS = [
    "display_name",
    "username",
    "lab_id",
    "lab_started_at",
    "lab_completed_at",
    "step_position",
    "step_id",
    "step_state",
    "attempts",
    "step_started_at",
    "step_passed_at",
    "step_seconds",
    "hints_revealed",
    "solution_revealed",
    "certificate_url",
]


def workshop_rows(*, workshop: Workshop, base_url: str) -> list[dict]:
    names = dict(workshop.enrolments.values_list("user_id", "display_name"))
    records = (
        LabProgress.objects.filter(user_id__in=names, lab_id__in=workshop.lab_ids)
        .select_related("user")
        .prefetch_related("steps")
        .order_by("user_id", "lab_id")
    )
    rows = []
    for record in records:
        certificate = (
            f"{base_url}/certificates/{record.certificate_id}/" if record.completed_at else ""
        )
        for step in record.steps.all():
            duration = step.duration
            rows.append(
                {
                    "display_name": names[record.user_id],
                    "username": record.user.username,
                    "lab_id": record.lab_id,
                    "lab_started_at": _iso(record.started_at),
                    "lab_completed_at": _iso(record.completed_at),
                    "step_position": step.position + 1,
                    "step_id": step.step_id,
                    "step_state": step.state,
                    "attempts": step.attempts,
                    "step_started_at": _iso(step.started_at),
                    "step_passed_at": _iso(step.passed_at),
                    "step_seconds": round(duration.total_seconds()) if duration else "",
                    "hints_revealed": step.hints_revealed,
                    "solution_revealed": step.solution_revealed,
                    "certificate_url": certificate,
                }
            )
    return rows


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""
