"""Sandbox lifecycle: create, provision, refresh, reset, tear down."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import string
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.catalog.setup import run_lab_setup
from labapp.catalog.spec import LabSpec
from labapp.clusters import isolation
from labapp.clusters.client import ClusterUnreachable, nodes_are_simulated
from labapp.clusters.config import admin_kubeconfig
from labapp.clusters.tools import default_tools
from labapp.lib.placeholders import render
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.workspaces import sandbox_materialize
from labapp.shell.command import describe_failure, run_command_line

log = logging.getLogger(__name__)
SLUG_ALPHABET = string.ascii_lowercase + string.digits
# A provisioning that has not finished after this long lost its worker: redo it.
PROVISIONING_DEADLINE = dt.timedelta(minutes=5)
# One no worker has claimed after this long lost its queue message: send it again.
UNCLAIMED_DEADLINE = dt.timedelta(seconds=60)
# A teardown that could not reach the cluster is tried again after this long.
TEARDOWN_RETRY_AFTER = dt.timedelta(seconds=30)


def new_slug() -> str:
    # Starts with a letter: it ends up in DNS-style Kubernetes names.
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(SLUG_ALPHABET) for _ in range(5)
    )


def physical_namespaces(lab: LabSpec, slug: str) -> dict[str, str]:
    """Each of the lab's logical namespaces, named for one sandbox."""
    return {name: f"{name}-{slug}" for name in lab.namespaces}


@transaction.atomic
def sandbox_create(
    *,
    owner: User,
    lab_id: str,
    lifetime: dt.timedelta | None = None,
    replay_steps: list[str] | None = None,
) -> Sandbox:
    """The learner's live sandbox for this lab; a new one is queued for provisioning."""
    lab = get_lab(lab_id)
    existing = (
        Sandbox.objects.select_for_update()
        .filter(owner=owner, lab_id=lab_id)
        .exclude(state=Sandbox.State.DELETED)
        .first()
    )
    if existing:
        return existing
    slug = new_slug()
    sandbox = Sandbox.objects.create(
        owner=owner,
        lab_id=lab.id,
        slug=slug,
        namespaces=physical_namespaces(lab, slug),
        expires_at=timezone.now() + lifetime if lifetime else None,
        replay_steps=replay_steps or [],
        status_message="waiting for a worker to provision it",
    )
    _enqueue_provision(sandbox)
    return sandbox


def _enqueue_provision(sandbox: Sandbox) -> None:
    from labapp.sandboxes.tasks import provision_sandbox

    provision_sandbox.delay_on_commit(sandbox.id)


def sandbox_provision(*, sandbox_id: int) -> Sandbox:
    """Bring a PROVISIONING sandbox to READY, or to FAILED with nothing left behind."""
    with transaction.atomic():
        sandbox = Sandbox.objects.select_for_update().get(id=sandbox_id)
        if sandbox.state != Sandbox.State.PROVISIONING:
            return sandbox
        now = timezone.now()
        if sandbox.claimed_at and now - sandbox.claimed_at < PROVISIONING_DEADLINE:
            return sandbox  # another worker is on it
        sandbox.claimed_at = now
        sandbox.status_message = "creating namespaces, access rules and quotas"
        sandbox.save(update_fields=["claimed_at", "status_message", "updated_at"])
    lab = get_lab(sandbox.lab_id)
    admin = admin_kubeconfig()
    try:
        refusal = _privileged_refusal(lab, admin)
        if refusal:
            return _mark(sandbox_id, Sandbox.State.FAILED, refusal)
        credentials = isolation.provision(
            admin,
            sandbox_id=sandbox.slug,
            namespaces=sandbox.namespaces,
            token_seconds=settings.SANDBOX_TOKEN_SECONDS,
            privileged_images=lab.privileged_images,
            exec_allowed=bool(lab.exec_commands),
        )
        # The workspace, with kubectl's cache warm for the setup's commands.
        sandbox_materialize(sandbox=sandbox, provisioning=True)
        problems = run_lab_setup(
            lab,
            namespaces=sandbox.namespaces,
            workspace=sandbox.workspace,
            admin_kubeconfig=admin,
            tools=default_tools(),
        )
        if not problems and sandbox.replay_steps:
            sandbox.learner_kubeconfig = credentials.kubeconfig
            problems = _replay(lab, sandbox)
    except ClusterUnreachable as exc:
        problems = [f"the sandbox cluster is unreachable: {exc}"]
        credentials = None
    except Exception as exc:
        # Anything else ends as FAILED with its cause, never as a sandbox
        # that stays "provisioning" and is retried forever.
        log.exception("provisioning sandbox %s failed", sandbox.slug)
        problems = [f"provisioning failed ({type(exc).__name__}: {exc})"]
        credentials = None
    if problems:
        _cleanup(sandbox)
        return _mark(sandbox_id, Sandbox.State.FAILED, "; ".join(problems))
    assert credentials is not None
    ready = _mark(
        sandbox_id,
        Sandbox.State.READY,
        "ready",
        learner_kubeconfig=credentials.kubeconfig,
        token_expires_at=credentials.expires_at,
        ready_at=timezone.now(),
    )
    if ready.state == Sandbox.State.DELETED:
        _cleanup(ready)  # torn down while we worked: what we just made must go too
    return ready


def _privileged_refusal(lab: LabSpec, admin: Path) -> str:
    """Privileged pods are harmless on simulated nodes and dangerous on real
    ones: there the operator must opt in (LABAPP_ALLOW_PRIVILEGED_LABS) to the
    labs that declare privileged images."""
    if not lab.privileged_images or settings.ALLOW_PRIVILEGED_LABS:
        return ""
    if nodes_are_simulated(admin):
        return ""
    return (
        f"the lab {lab.id!r} runs privileged pods, and this cluster has real nodes; "
        "the operator must set LABAPP_ALLOW_PRIVILEGED_LABS=true to allow it"
    )


def _replay(lab: LabSpec, sandbox: Sandbox) -> list[str]:
    """Run the solutions of earlier steps, as the learner would have."""
    sandbox_materialize(sandbox=sandbox)
    problems = []
    for step_id in sandbox.replay_steps:
        for line in filter(None, map(str.strip, lab.step(step_id).solution.splitlines())):
            result = run_command_line(
                render(line, sandbox.namespaces),
                tools=default_tools(),
                kubeconfig=sandbox.kubeconfig_path,
                workdir=sandbox.workspace,
                timeout=60,
            )
            if result.exit_code != 0:
                problems.append(
                    f"replaying step {step_id} (`{line}`) failed: {describe_failure(result)}"
                )
    return problems


def _mark(sandbox_id: int, state: str, message: str, **fields: object) -> Sandbox:
    with transaction.atomic():
        sandbox = Sandbox.objects.select_for_update().get(id=sandbox_id)
        if sandbox.state == Sandbox.State.DELETED:
            return sandbox  # torn down while we worked; do not resurrect it
        sandbox.state, sandbox.status_message = state, message
        for name, value in fields.items():
            setattr(sandbox, name, value)
        sandbox.save()
        return sandbox


def _cleanup(sandbox: Sandbox) -> bool:
    """Remove the sandbox's cluster objects and files. When the cluster cannot
    be reached, mark the teardown pending for `sandboxes_retry_teardown`."""
    shutil.rmtree(sandbox.directory, ignore_errors=True)
    try:
        isolation.teardown(
            admin_kubeconfig(), sandbox_id=sandbox.slug, namespaces=sandbox.namespaces
        )
    except ClusterUnreachable as exc:
        log.warning("teardown of sandbox %s is pending: %s", sandbox.slug, exc)
        Sandbox.objects.filter(id=sandbox.id).update(
            teardown_pending=True, updated_at=timezone.now()
        )
        return False
    Sandbox.objects.filter(id=sandbox.id, teardown_pending=True).update(
        teardown_pending=False, updated_at=timezone.now()
    )
    return True


def sandbox_refresh_token(*, sandbox: Sandbox) -> Sandbox:
    if not sandbox.token_needs_refresh():
        return sandbox
    credentials = isolation.issue_token(
        admin_kubeconfig(), sandbox_id=sandbox.slug, seconds=settings.SANDBOX_TOKEN_SECONDS
    )
    Sandbox.objects.filter(id=sandbox.id).update(
        learner_kubeconfig=credentials.kubeconfig, token_expires_at=credentials.expires_at
    )
    sandbox.refresh_from_db()
    return sandbox


def sandbox_teardown(*, sandbox_id: int) -> Sandbox:
    with transaction.atomic():
        sandbox = Sandbox.objects.select_for_update().get(id=sandbox_id)
        if sandbox.state == Sandbox.State.DELETED:
            return sandbox
        sandbox.state, sandbox.status_message = Sandbox.State.DELETED, "deleted"
        sandbox.save()
    _cleanup(sandbox)
    return sandbox


def sandbox_reset(*, sandbox_id: int, replay_steps: list[str] | None = None) -> Sandbox:
    """Teardown plus a fresh sandbox (new names: the old ones may still be terminating).
    With `replay_steps`, the new sandbox replays those steps' solutions after setup."""
    old = sandbox_teardown(sandbox_id=sandbox_id)
    assert old.owner is not None  # a learner's: a pooled sandbox is reset once claimed
    return sandbox_create(
        owner=old.owner,
        lab_id=old.lab_id,
        lifetime=(old.expires_at - old.created_at) if old.expires_at else None,
        replay_steps=replay_steps or [],
    )


def sandboxes_redo_stalled(*, now: dt.datetime | None = None) -> int:
    """Re-enqueue provisionings whose message or worker vanished (a Redis
    restart loses queued messages); provisioning is idempotent."""
    now = now or timezone.now()
    never_claimed = Q(claimed_at__isnull=True, updated_at__lt=now - UNCLAIMED_DEADLINE)
    claim_expired = Q(claimed_at__lt=now - PROVISIONING_DEADLINE)
    stalled = list(
        Sandbox.objects.filter(never_claimed | claim_expired, state=Sandbox.State.PROVISIONING)
    )
    for sandbox in stalled:
        Sandbox.objects.filter(id=sandbox.id).update(claimed_at=None, updated_at=timezone.now())
        _enqueue_provision(sandbox)
    return len(stalled)


def sandboxes_retry_teardown(*, now: dt.datetime | None = None) -> int:
    """Tear down again the sandboxes whose teardown could not reach the cluster.
    Returns how many are now gone from it; stops at the first that still fails,
    since the others would only wait on the same unreachable server."""
    now = now or timezone.now()
    pending = Sandbox.objects.filter(
        teardown_pending=True, updated_at__lt=now - TEARDOWN_RETRY_AFTER
    ).order_by("updated_at")
    done = 0
    for sandbox in pending:
        # Claim it: another beat run (or worker) that got here first wins.
        claimed = Sandbox.objects.filter(
            id=sandbox.id, teardown_pending=True, updated_at=sandbox.updated_at
        ).update(updated_at=timezone.now())
        if not claimed:
            continue
        if not _cleanup(sandbox):
            break
        done += 1
    return done


def sandboxes_expire(*, now: dt.datetime | None = None) -> int:
    """Tear down sandboxes past their expiry; they stay listed as EXPIRED."""
    now = now or timezone.now()
    expired = 0
    for sandbox in Sandbox.objects.filter(state=Sandbox.State.READY, expires_at__lt=now):
        if _mark(sandbox.id, Sandbox.State.EXPIRED, "expired").state == Sandbox.State.EXPIRED:
            _cleanup(sandbox)
            expired += 1
    return expired
