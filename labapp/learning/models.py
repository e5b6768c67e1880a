from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from labapp.checks.outcome import Outcome
from labapp.sandboxes.models import SandboxPool


class Workshop(models.Model):
    """A cohort: labs, a join code, a time window, a capacity, a sandbox lifetime."""

    title = models.CharField(max_length=200)
    join_code = models.CharField(max_length=12, unique=True)
    lab_ids = models.JSONField(default=list)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    capacity = models.PositiveIntegerField(default=100)
    sandbox_lifetime_minutes = models.PositiveIntegerField(default=240)
    instructors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teaching", blank=True
    )
    # Its warm pools, one per lab (labapp/sandboxes/pools.py).
    pools = models.ManyToManyField(SandboxPool, related_name="workshops", blank=True)
    broadcast = models.TextField(blank=True)
    broadcast_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.title} ({self.join_code})"

    def is_open(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now < self.ends_at

    @property
    def sandbox_lifetime(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.sandbox_lifetime_minutes)


class Enrolment(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="enrolments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments"
    )
    display_name = models.CharField(max_length=80)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["workshop", "user"], name="one_enrolment_per_user"),
        )

    def __str__(self) -> str:
        return f"{self.display_name} in {self.workshop.join_code}"


class LabProgress(models.Model):
    """One learner's record for one lab: the evidence behind "completed"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_progress"
    )
    lab_id = models.CharField(max_length=50)
    workshop = models.ForeignKey(
        Workshop, null=True, blank=True, on_delete=models.SET_NULL, related_name="progress"
    )
    current_step_id = models.CharField(max_length=50, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Unguessable id of the completion certificate's public verification page.
    certificate_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["user", "lab_id"], name="one_record_per_learner_lab"),
        )

    def __str__(self) -> str:
        return f"{self.user} on {self.lab_id}"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None

    @property
    def passed_count(self) -> int:
        return sum(1 for step in self.steps.all() if step.state == StepProgress.State.PASSED)


class StepProgress(models.Model):
    class State(models.TextChoices):
        NOT_STARTED = "not_started", "not started"
        WORKING = "working"
        FAILING = "failing"
        PASSED = "passed"

    lab_progress = models.ForeignKey(LabProgress, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.NOT_STARTED)
    attempts = models.PositiveIntegerField(default=0)  # runs that evaluated its checks
    failed_in_a_row = models.PositiveIntegerField(default=0)
    hints_revealed = models.PositiveSmallIntegerField(default=0)
    solution_revealed = models.BooleanField(default=False)
    # Outcome.to_dict() of each check, as the step's last evaluation found them.
    last_outcomes = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    passed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("position",)
        constraints = (
            models.UniqueConstraint(fields=["lab_progress", "step_id"], name="one_row_per_step"),
        )

    def __str__(self) -> str:
        return f"{self.step_id}: {self.state}"

    @property
    def state_label(self) -> str:
        """The state for people. The dashboard prints one per cell, and
        get_state_display flattens the field's choices on every call."""
        return str(self.State(self.state).label)

    @property
    def outcomes(self) -> list[Outcome]:
        return [Outcome.from_dict(data) for data in self.last_outcomes]

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started_at and self.passed_at:
            return self.passed_at - self.started_at
        return None
