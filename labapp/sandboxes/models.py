from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Sandbox(models.Model):
    """One learner's isolated namespaces for one lab, and their lifecycle."""

    class State(models.TextChoices):
        PROVISIONING = "provisioning"
        READY = "ready"
        FAILED = "failed"
        EXPIRED = "expired"
        DELETED = "deleted"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandboxes"
    )
    lab_id = models.CharField(max_length=50)
    # Short id used in Kubernetes names; changes on reset (old names may still terminate).
    slug = models.CharField(max_length=12, unique=True)
    namespaces = models.JSONField(default=dict)  # logical -> physical
    state = models.CharField(max_length=16, choices=State.choices, default=State.PROVISIONING)
    status_message = models.TextField(blank=True)
    learner_kubeconfig = models.TextField(blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    # Steps whose solutions are replayed after setup: "reset this step" starts
    # the learner at that step, with the earlier steps' changes in place.
    replay_steps = models.JSONField(default=list, blank=True)
    # Set by the worker that is provisioning it, so a second delivery waits its turn.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Its cluster objects may outlive it: set when a teardown could not reach the
    # cluster, cleared once one succeeds. The state stays the learner's view of it
    # (deleted, expired, failed); a beat task retries the teardown.
    teardown_pending = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["owner", "lab_id"],
                condition=~Q(state="deleted"),
                name="one_live_sandbox_per_learner_and_lab",
            ),
        )

    def __str__(self) -> str:
        return f"{self.lab_id}/{self.slug} ({self.state})"

    @property
    def directory(self) -> Path:
        return settings.SANDBOX_HOME / self.slug

    @property
    def workspace(self) -> Path:
        return self.directory / "workspace"

    @property
    def kubeconfig_path(self) -> Path:
        return self.directory / "kubeconfig"

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def token_needs_refresh(self, now: dt.datetime | None = None) -> bool:
        soon = (now or timezone.now()) + dt.timedelta(minutes=10)
        return self.token_expires_at is None or self.token_expires_at <= soon
