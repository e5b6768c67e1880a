"""Step tracking through real processes: uvicorn, a Celery worker, the tracker
and the local control plane. Steps tick from the cluster's state and the step's
history, whoever changed the cluster and however many commands it took."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time

import httpx
import pytest
from django.utils import timezone

from labapp.instructor.services import workshop_create
from labapp.learning.models import LabProgress, StepProgress
from labapp.learning.services import lab_start, workshop_join
from labapp.ops.devstack import kill_group
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def begin(user, lab_id: str) -> tuple[LabProgress, Sandbox]:
    progress = lab_start(user=user, lab_id=lab_id)
    sandbox = wait_until_ready(Sandbox.objects.get(owner=user, lab_id=lab_id))
    return progress, sandbox


def run(who: HttpLearner, sandbox: Sandbox, command: str, step: str = "") -> CommandRun:
    """Post a command as the page does: typed (no step) or from a Run button (a step)."""
    data = {"command": command, **({"step": step} if step else {})}
    response = who.post(f"/sandboxes/{sandbox.slug}/runs/", data)
    assert response.status_code == 202, response.text
    run_id = int(re.search(r'id="run-(\d+)"', response.text).group(1))
    return wait_for(
        lambda: CommandRun.objects.filter(id=run_id, finished_at__isnull=False).first(),
        timeout=60,
        what=f"run {run_id} to end",
    )


def step_state(progress: LabProgress, step_id: str) -> str:
    return progress.steps.get(step_id=step_id).state


def passes(progress: LabProgress, step_id: str, timeout: float = 30) -> StepProgress:
    return wait_for(
        lambda: progress.steps.filter(step_id=step_id, state=StepProgress.State.PASSED).first(),
        timeout=timeout,
        what=f"step {step_id} to pass",
    )


def test_typed_commands_count_for_the_current_step_and_the_lab_completes(
    learner, tiny_lab, live_stack
):
    progress, sandbox = begin(learner, tiny_lab.id)
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    first = run(ada, sandbox, "kubectl apply -k shop/restricted")
    assert first.step_id == "label-namespace"  # the server chose: the current step
    passes(progress, "label-namespace")
    # Typed again, with no page reload: it counts for the step that is current now.
    second = run(ada, sandbox, "kubectl apply -k shop/configured")
    assert second.step_id == "configure"
    passes(progress, "configure")
    run(ada, sandbox, f"kubectl -n {ns} delete pod --all")
    run(ada, sandbox, f"kubectl -n {ns} get pod")
    passes(progress, "recycle-pods")
    progress.refresh_from_db()
    assert progress.is_complete
    # A passed step is a record: every check of it shows as passed.
    for step in progress.steps.all():
        assert {o["status"] for o in step.last_outcomes} == {"pass"}, step.step_id


def test_a_run_button_counts_for_its_own_step(learner, tiny_lab, live_stack):
    _, sandbox = begin(learner, tiny_lab.id)
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    clicked = run(ada, sandbox, f"kubectl -n {ns} get pod", step="recycle-pods")
    assert clicked.step_id == "recycle-pods"
    typed = run(ada, sandbox, f"kubectl -n {ns} get pod")
    assert typed.step_id == "label-namespace"


def test_a_check_ticks_when_the_cluster_converges_later_with_no_second_command(
    learner, tiny_lab, live_stack, kubectl
):
    progress, sandbox = begin(learner, tiny_lab.id)
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    run(ada, sandbox, "kubectl apply -k shop/restricted")
    passes(progress, "label-namespace")
    # The learner looks, but changes nothing: the step is not done.
    run(ada, sandbox, f"kubectl -n {ns} get configmap shop")
    time.sleep(2)
    assert step_state(progress, "configure") != StepProgress.State.PASSED
    # Seconds later something else (here the admin, as a controller would) brings
    # the cluster to the step's goal. No command of the learner's follows.
    changed_at = time.monotonic()
    kubectl("-n", ns, "patch", "configmap", "shop", "-p", '{"data":{"GREETING":"hello"}}')
    kubectl("-n", ns, "create", "service", "clusterip", "shop", "--tcp=80:8080")
    passed = passes(progress, "configure")
    assert time.monotonic() - changed_at < 15
    assert passed.attempts == 1  # the one look: the tick was the tracker's, not a run's


def test_one_learners_changes_never_tick_another_learners_checks(
    learner, another_learner, tiny_lab, live_stack
):
    ada_progress, ada_sandbox = begin(learner, tiny_lab.id)
    bob_progress, _ = begin(another_learner, tiny_lab.id)
    ada = HttpLearner.login(learner, live_stack.url)
    run(ada, ada_sandbox, "kubectl apply -k shop/restricted")
    passes(ada_progress, "label-namespace")
    time.sleep(3)  # ample time for a wrongly routed judgement to land
    bob_step = bob_progress.steps.get(step_id="label-namespace")
    assert bob_step.state != StepProgress.State.PASSED
    # The tracker may judge Bob's step (his own sandbox changed as it was set up), but
    # nothing of Ada's counts for him: he has done nothing, so no check of his passes.
    assert not any(outcome["status"] == "pass" for outcome in bob_step.last_outcomes)


def test_the_step_still_passes_after_the_tracker_is_killed_and_restarted(
    learner, tiny_lab, live_stack
):
    progress, sandbox = begin(learner, tiny_lab.id)
    ada = HttpLearner.login(learner, live_stack.url)
    stack = live_stack.stack
    tracker = next(p for p in stack.processes if "tracker" in " ".join(p.args))
    stack.processes.remove(tracker)
    kill_group(tracker)
    try:
        run(ada, sandbox, "kubectl apply -k shop/restricted")
        time.sleep(2)
        assert step_state(progress, "label-namespace") != StepProgress.State.PASSED
    finally:
        stack.start_tracker("tracker-restarted.log")
    passes(progress, "label-namespace")  # caught up on start


def test_the_label_step_passes_when_enforce_and_warn_are_set_by_two_commands(learner, live_stack):
    """The shipped Baseline lab: the warning comes from the first command, the
    second label from the second; the step judges both together."""
    progress, sandbox = begin(learner, "pss-baseline")
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["assets"]
    label = f"kubectl label ns {ns} pod-security.kubernetes.io"
    enforce = run(ada, sandbox, f"{label}/enforce=baseline")
    assert "violate the new PodSecurity enforce level" in enforce.stderr
    time.sleep(1)
    assert step_state(progress, "label-namespace") != StepProgress.State.PASSED
    warn = run(ada, sandbox, f"{label}/warn=baseline")
    assert "violate" not in warn.stderr  # the second command printed no warning
    passes(progress, "label-namespace")


def test_the_lab_page_channel_announces_the_tick_and_the_dashboard_hears_it_too(
    learner, instructor, tiny_lab, live_stack
):
    now = timezone.now()
    workshop = workshop_create(
        instructor=instructor,
        title="Tracking",
        lab_ids=[tiny_lab.id],
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(hours=1),
    )
    workshop_join(user=learner, join_code=workshop.join_code, display_name="Ada")
    progress = lab_start(user=learner, lab_id=tiny_lab.id, workshop=workshop)
    sandbox = wait_until_ready(Sandbox.objects.get(owner=learner, lab_id=tiny_lab.id))
    ada = HttpLearner.login(learner, live_stack.url)
    teacher = HttpLearner.login(instructor, live_stack.url)
    heard: dict[str, list[str]] = {"learner": [], "instructor": []}

    def listen(who: str, client: httpx.Client, path: str) -> None:
        # The label may tick before kubectl exits and its output is counted, so a
        # first announcement can carry one check; listen until the step has passed.
        with client.stream("GET", path, timeout=30) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    heard[who].append(line[7:])
                elif line.startswith("data: ") and json.loads(line[6:])["step"] == "configure":
                    return

    listeners = [
        threading.Thread(
            target=listen, args=("learner", ada.client, f"/labs/{tiny_lab.id}/events/")
        ),
        threading.Thread(
            target=listen,
            args=("instructor", teacher.client, f"/teach/{workshop.join_code}/events/"),
        ),
    ]
    for listener in listeners:
        listener.start()
    time.sleep(1)  # both channels are open before the learner acts
    run(ada, sandbox, "kubectl apply -k shop/restricted")
    for listener in listeners:
        listener.join(timeout=30)
    for events in heard.values():
        assert events and set(events) == {"progress"}, heard
    refreshed = ada.client.get(f"/labs/{tiny_lab.id}/refresh/", headers={"HX-Request": "true"})
    assert refreshed.text.count('data-status="pass"') == 3
    progress.refresh_from_db()
    assert progress.current_step_id == "configure"
