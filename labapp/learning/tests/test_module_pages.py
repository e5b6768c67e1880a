"""The Pod Security module as learners see it: one ordered module on the home page
and in workshops, a link to the next lab, the mistake a failing check recognises,
and the audit records of their own namespace only. Personas: the learner (Ada)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from labapp.catalog.registry import all_labs
from labapp.checks.outcome import Outcome, Status
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.catalog import SHIPPED_LABS, use_lab_root

pytestmark = pytest.mark.django_db
TITLES = ("the Privileged profile", "the Baseline profile", "the Restricted profile")


@pytest.fixture(autouse=True)
def shipped_labs(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path / "sandboxes"
    use_lab_root(settings, SHIPPED_LABS)
    yield
    all_labs.cache_clear()


def in_order(page: str, *texts: str) -> bool:
    places = [page.find(text) for text in texts]
    return -1 not in places and places == sorted(places)


def start(user, lab_id: str) -> Sandbox:
    lab_start(user=user, lab_id=lab_id)
    Sandbox.objects.filter(owner=user, lab_id=lab_id).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=user, lab_id=lab_id)


def test_the_home_page_shows_the_module_in_its_order(client):
    page = client.get("/").content.decode()
    assert "Module: Pod Security Standards" in page
    assert in_order(page, *TITLES)


def test_a_workshop_lists_its_labs_in_the_modules_order(as_learner, learner):
    now = timezone.now()
    workshop = Workshop.objects.create(
        title="PSS",
        join_code="MODULE",
        lab_ids=["pss-restricted", "pss-privileged", "pss-baseline"],
        ends_at=now + dt.timedelta(hours=2),
    )
    Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    page = as_learner.get("/w/MODULE/").content.decode()
    assert in_order(page, *TITLES)


def test_each_lab_ends_with_a_link_to_the_next(as_learner, learner):
    start(learner, "pss-privileged")
    page = as_learner.get("/labs/pss-privileged/").content.decode()
    assert "Module Pod Security Standards: lab 1 of 3" in page
    assert 'href="/labs/pss-baseline/"' in page and "Next in the Pod Security Standards" in page
    start(learner, "pss-restricted")
    last = as_learner.get("/labs/pss-restricted/").content.decode()
    assert "This is the last lab of the Pod Security Standards module" in last
    # Before a learner starts it, the lab says where it stands.
    assert "lab 2 of 3" in as_learner.get("/labs/pss-baseline/").content.decode()


def test_a_failing_check_names_the_mistake_the_learner_made(as_learner, learner):
    start(learner, "pss-baseline")
    mistake = next(
        m for m in all_labs()["pss-baseline"].step("recycle-pods").mistakes if "rollout" in m.title
    )
    record = LabProgress.objects.get(user=learner, lab_id="pss-baseline")
    step = record.steps.get(step_id="recycle-pods")
    step.state = "failing"
    step.last_outcomes = [
        Outcome(
            Status.FAIL,
            "no assets pod is running",
            expected="0 Running pods",
            found="1 Running",
            detail=mistake.message,
        ).to_dict()
    ]
    step.save()
    page = as_learner.get("/labs/pss-baseline/").content.decode()
    assert "What went wrong:" in page
    assert "kubectl rollout restart replaces pods one at a time" in page


def audit_event(namespace: str, violation: str) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "stage": "ResponseComplete",
            "verb": "patch",
            "user": {"username": "system:serviceaccount:labapp-learners:learner-x"},
            "objectRef": {"resource": "deployments", "namespace": namespace, "name": "assets"},
            "stageTimestamp": "2026-01-01T10:00:00.000000Z",
            "annotations": {"pod-security.kubernetes.io/audit-violations": violation},
        },
        separators=(",", ":"),
    )


def test_the_audit_panel_shows_the_learners_own_records_only(
    as_learner, learner, settings, tmp_path
):
    settings.KUBECONFIG = ""
    settings.LOCALCLUSTER_HOME = tmp_path / "clusters"
    sandbox = start(learner, "pss-privileged")
    mine = sandbox.namespaces["assets"]
    log = tmp_path / "clusters" / settings.LOCALCLUSTER_NAME / "logs" / "audit.log"
    log.parent.mkdir(parents=True)
    log.write_text(
        audit_event(mine, 'would violate PodSecurity "baseline:latest": privileged (mine)')
        + "\n"
        + audit_event("assets-someone", "would violate PodSecurity: privileged (theirs)")
        + "\n"
    )
    page = as_learner.get("/labs/pss-privileged/").content.decode()
    assert "Pod Security audit records" in page
    assert "privileged (mine)" in page
    assert "(theirs)" not in page
    assert "learner-x" in page


def test_on_other_clusters_the_audit_panel_says_where_the_log_is(as_learner, learner, settings):
    settings.KUBECONFIG = "/nonexistent/eks.kubeconfig"
    start(learner, "pss-privileged")
    page = as_learner.get("/labs/pss-privileged/").content.decode()
    assert "CloudWatch Logs" in page and "--audit-log-path" in page
