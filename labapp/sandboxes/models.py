from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labapp.sandboxes.fields import EncryptedTextField


class Sandbox(models.Model):
    """One learner's isolated namespaces for one lab, and their lifecycle."""

    class State(models.TextChoices):
        PROVISIONING = "provisioning"
        READY = "ready"
        FAILED = "failed"
        EXPIRED = "expired"
        DELETED = "deleted"

    # None while a pooled sandbox waits for a learner: nobody sees it, the tracker
    # never judges it. `sandbox_claim` binds it to its learner.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sandboxes",
    )
    lab_id = models.CharField(max_length=50)
    # The warm pool it was made for (it keeps it once claimed, for the pool's counts).
    pool = models.ForeignKey(
        "SandboxPool",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sandboxes",
    )
    # When a learner claimed it from its pool.
    bound_at = models.DateTimeField(null=True, blank=True)
    # Short id used in Kubernetes names; changes on reset (old names may still terminate).
    slug = models.CharField(max_length=12, unique=True)
    namespaces = models.JSONField(default=dict)  # logical -> physical
    state = models.CharField(max_length=16, choices=State.choices, default=State.PROVISIONING)
    status_message = models.TextField(blank=True)
    # Embeds the learner's token: encrypted in the database (see fields.py).
    learner_kubeconfig = EncryptedTextField(blank=True)
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
            models.CheckConstraint(
                condition=Q(owner__isnull=False) | Q(pool__isnull=False),
                name="sandbox_owned_or_pooled",
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
        # No kubeconfig: it could not be decrypted (the key changed); issue a new one.
        expiring = self.token_expires_at is None or self.token_expires_at <= soon
        return expiring or not self.learner_kubeconfig


class SandboxPool(models.Model):
    """Sandboxes provisioned before anyone asks, so that starting a lab is a claim
    (a row update) rather than a provisioning. A workshop has one per lab, filled
    from POOL_LEAD_MINUTES before it starts until it ends; a self-paced lab has one
    standing pool (`standing`), sized by POOL_SELF_PACED_SIZE."""

    lab_id = models.CharField(max_length=50)
    title = models.CharField(max_length=200, blank=True)  # whom it serves, for people
    standing = models.BooleanField(default=False)
    # Unclaimed sandboxes (provisioning or ready) it keeps.
    size = models.PositiveIntegerField(default=0)
    # The most it hands out in all (a workshop's capacity); None: no limit.
    capacity = models.PositiveIntegerField(null=True, blank=True)
    # Filling begins POOL_LEAD_MINUTES before `starts_at` (None: at once). From
    # `ends_at` on nothing is claimable and its unclaimed sandboxes are torn down.
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["lab_id"], condition=Q(standing=True), name="one_standing_pool_per_lab"
            ),
        )

    def __str__(self) -> str:
        return f"pool {self.title or self.lab_id} ({self.size})"

    def is_open(self, now: dt.datetime | None = None) -> bool:
        """Its sandboxes may be claimed."""
        return self.ends_at is None or (now or timezone.now()) < self.ends_at

    def fills_from(self) -> dt.datetime | None:
        if self.starts_at is None:
            return None
        return self.starts_at - dt.timedelta(minutes=settings.POOL_LEAD_MINUTES)

    def is_filling(self, now: dt.datetime | None = None) -> bool:
        """It should be provisioning towards its size now."""
        now = now or timezone.now()
        begins = self.fills_from()
        return self.size > 0 and self.is_open(now) and (begins is None or begins <= now)
