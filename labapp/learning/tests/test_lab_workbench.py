"""The lab page's workbench, server side: the Files panel (the learner's own names,
highlighted, read-only), Preview, Edit, the shortcuts and the expiry countdown.
Personas: the learner (Ada). The browser side is in tests/e2e/test_lab_workbench.py."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from labapp.shell.parse import parse_command

pytestmark = pytest.mark.django_db
LAB = "/labs/tiny"


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture
def started(learner, tiny_lab) -> Sandbox:
    lab_start(user=learner, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=learner).update(
        state=Sandbox.State.READY, namespaces={"shop": "shop-k7m2q"}
    )
    return Sandbox.objects.get(owner=learner)


def test_the_files_panel_shows_the_learners_workspace_with_their_names(started, as_learner):
    page = as_learner.get(f"{LAB}/").content.decode()
    files = page[page.index('<section id="files"') :]
    for path in ("shop/base/", "shop/configured/", "shop/restricted/"):
        assert f"<code>{path}</code>" in files
    # The namespace manifest names the learner's namespace, highlighted by Pygments.
    namespace = files[files.index('data-path="shop/restricted/namespace.yaml"') :]
    namespace = namespace[: namespace.index("</details>")]
    assert '<span class="nt">name</span>' in namespace
    assert "shop-k7m2q" in namespace
    assert not re.search(r">shop</span>\s*\n", namespace)


def test_preview_runs_kubectl_kustomize_through_the_run_path(started, as_learner):
    page = as_learner.get(f"{LAB}/").content.decode()
    form = re.search(
        r'<form method="post" class="inline preview-form" action="([^"]+)"[^>]*>(.*?)</form>',
        page,
        re.S,
    )
    assert form and form.group(1) == f"/sandboxes/{started.slug}/runs/"
    assert 'value="kubectl kustomize shop/base"' in page
    # The restricted shell lets it through, with no way out of the workspace.
    assert parse_command("kubectl kustomize shop/restricted").stages[0].program == "kubectl"
    posted = as_learner.post(
        f"/sandboxes/{started.slug}/runs/",
        {"command": "kubectl kustomize shop/restricted"},
        headers={"HX-Request": "true"},
    )
    assert posted.status_code == 202


def test_each_command_has_run_copy_and_edit_and_the_shortcuts_are_listed(started, as_learner):
    page = as_learner.get(f"{LAB}/").content.decode()
    command = f"kubectl -n {started.namespaces['shop']} delete pod --all"
    assert f'data-copy="{command}"' in page
    assert f'data-edit="{command}" aria-label="Edit: {command}"' in page
    shortcuts = page[page.index('<details class="shortcuts">') :]
    for key in ("/", "Enter", "↑", "Esc", "?"):
        assert f"<kbd>{key}</kbd>" in shortcuts


def test_the_countdown_warns_ten_minutes_before_the_end(started, as_learner):
    now = timezone.now()
    Sandbox.objects.filter(id=started.id).update(expires_at=now + dt.timedelta(minutes=47))
    with time_machine.travel(now, tick=False):
        early = as_learner.get(f"{LAB}/sandbox/").content.decode()
        assert "(47 min left)" in early
        assert "expiry-warning" not in early
    with time_machine.travel(now + dt.timedelta(minutes=37, seconds=30), tick=False):
        late = as_learner.get(f"{LAB}/sandbox/").content.decode()
    assert "(9:30 left)" in late
    assert 'class="expiry-warning" role="alert"' in late
    assert "expires in under 10 minutes" in late
    expires = Sandbox.objects.get(id=started.id).expires_at
    assert f'data-expires-at="{expires.isoformat()}"' in late


def test_a_long_sandbox_reads_in_hours(started, as_learner):
    now = timezone.now()
    Sandbox.objects.filter(id=started.id).update(expires_at=now + dt.timedelta(minutes=125))
    with time_machine.travel(now, tick=False):
        assert "(2 h 05 min left)" in as_learner.get(f"{LAB}/sandbox/").content.decode()
