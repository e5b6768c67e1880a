from __future__ import annotations

from django.db import models
from django.utils import timezone

from labapp.sandboxes.models import Sandbox


class CommandRun(models.Model):
    """One command a learner ran (or tried to), and what came of it.

    The database is the record: Redis holds only the live stream, and a lost
    stream never loses a result.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"  # exit 0
        FAILED = "failed"  # non-zero exit, timeout, worker lost, ...
        REFUSED = "refused"  # the restricted shell said no; nothing ran
        CANCELLED = "cancelled"  # the learner stopped it (a queued one never ran)

    FINAL = (State.SUCCEEDED, State.FAILED, State.REFUSED, State.CANCELLED)
    # The learner may cancel it: it has not ended yet.
    CANCELLABLE = (State.QUEUED, State.RUNNING)

    sandbox = models.ForeignKey(Sandbox, on_delete=models.CASCADE, related_name="runs")
    step_id = models.CharField(max_length=50, blank=True)
    command = models.TextField()
    # The workers that run it (labapp.shell.lanes): quick commands never wait behind slow.
    lane = models.CharField(max_length=8, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A RUNNING run past this instant has lost its worker.
    deadline_at = models.DateTimeField(null=True, blank=True)
    first_byte_ms = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = (
            models.Index(fields=["state", "deadline_at"]),
            models.Index(fields=["sandbox", "queued_at"]),
        )

    def __str__(self) -> str:
        return f"run {self.id} ({self.state}): {self.command[:40]}"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL

    @property
    def is_cancellable(self) -> bool:
        return self.state in self.CANCELLABLE

    def done_payload(self, *, complete: bool = True) -> dict:
        """What the stream's closing `done` event carries."""
        return {
            "run": self.id,
            "state": self.state,
            "exit_code": self.exit_code,
            "error": self.error,
            "complete": complete,
            "duration_ms": self.duration_ms,
        }

    @property
    def as_done(self) -> dict:
        return self.done_payload()
