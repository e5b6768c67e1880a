"""Rate limits: per learner (tight) and per address (generous), each with a clear 429.

Personas: the learner (Ada), another learner (Bob) behind the same address, and
anonymous visitors. Time stands still inside each test (time_machine), so a
count never crosses a window by chance; `shift` moves to the next window."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
import redis
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from labapp import settings as labapp_settings
from labapp.learning.limits import ACTIONS
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
LAB = "/labs/tiny"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path
    settings.RUN_IN_FLIGHT_PER_SANDBOX = 1000  # this file is about rates, not the cap


@pytest.fixture
def limits(settings) -> dict[str, dict[str, str]]:
    """Rate limits on, every one loose; a test tightens the one it is about."""
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMITS = {action: {"user": "1000/m", "ip": "1000/m"} for action in ACTIONS}
    cache.clear()
    return settings.RATELIMITS


@pytest.fixture
def frozen():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def start_lab(user, tiny_lab) -> Sandbox:
    lab_start(user=user, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=user).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=user)


def run(client: Client, sandbox: Sandbox, **headers: str):
    return client.post(
        f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods"}, headers=headers
    )


def test_runs_are_limited_per_learner_and_the_limit_resets(limits, frozen, learner, tiny_lab):
    limits["run"] = {"user": "3/m", "ip": "100/m"}
    sandbox = start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    for _ in range(3):
        assert run(as_learner, sandbox, **HTMX).status_code == 202
    refused = run(as_learner, sandbox, **HTMX)
    assert refused.status_code == 429
    assert re.fullmatch(
        r'<p class="problem rate-limited" role="alert" data-testid="rate-limited">'
        r"You have made too many commands \(3 per minute\)\. "
        r"Please wait \d+ seconds?, then try again\.</p>",
        refused.text.strip(),
    )
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "HX-Retarget" not in refused  # it lands where the run's output would
    assert CommandRun.objects.count() == 3  # the refused one is not recorded
    # Without JavaScript: a page that says the same.
    page = run(as_learner, sandbox)
    assert page.status_code == 429 and "<html" in page.text
    assert "You have made too many commands (3 per minute)" in page.text

    frozen.shift(dt.timedelta(minutes=1))  # the next window
    assert run(as_learner, sandbox, **HTMX).status_code == 202
    assert CommandRun.objects.count() == 4


def test_a_classroom_behind_one_address_shares_a_generous_limit(
    limits, frozen, learner, another_learner, tiny_lab
):
    limits["run"] = {"user": "3/m", "ip": "4/m"}
    adas, bobs = start_lab(learner, tiny_lab), start_lab(another_learner, tiny_lab)
    as_ada, as_bob = logged_in(learner), logged_in(another_learner)
    for _ in range(3):
        assert run(as_ada, adas, **HTMX).status_code == 202
    # Ada over her own limit: her refused clicks do not use up the classroom's.
    for _ in range(5):
        assert run(as_ada, adas, **HTMX).status_code == 429
    assert run(as_bob, bobs, **HTMX).status_code == 202  # the address's 4th
    shared = run(as_bob, bobs, **HTMX)
    assert shared.status_code == 429
    assert "Too many commands are coming from your network (4 per minute" in shared.text
    # From another address, Bob is within both of his limits.
    elsewhere = logged_in(another_learner, REMOTE_ADDR="192.0.2.7")
    assert run(elsewhere, bobs, **HTMX).status_code == 202


def test_hints_and_solutions_are_limited_with_an_htmx_notice(limits, frozen, learner, tiny_lab):
    limits["reveal"] = {"user": "2/m", "ip": "100/m"}
    start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    step = f"{LAB}/steps/label-namespace"
    assert as_learner.post(f"{step}/hint/", headers=HTMX).status_code == 200
    assert as_learner.post(f"{step}/hint/", headers=HTMX).status_code == 200
    refused = as_learner.post(f"{step}/solution/", headers=HTMX)
    assert refused.status_code == 429
    # htmx puts it in the page's notice area, not in place of the step.
    assert (refused["HX-Retarget"], refused["HX-Reswap"]) == ("#notices", "innerHTML")
    assert "too many hint and solution requests (2 per minute)" in refused.text
    record = LabProgress.objects.get(user=learner).steps.get(step_id="label-namespace")
    assert (record.hints_revealed, record.solution_revealed) == (2, False)


def test_check_again_is_limited(limits, frozen, learner, tiny_lab, monkeypatch):
    monkeypatch.setattr("labapp.learning.views.progress_recheck", lambda **kwargs: None)
    limits["check"] = {"user": "1/m", "ip": "100/m"}
    start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    url = f"{LAB}/steps/label-namespace/check/"
    assert as_learner.post(url, headers=HTMX).status_code == 200
    refused = as_learner.post(url, headers=HTMX)
    assert refused.status_code == 429 and "too many checks (1 per minute)" in refused.text


def test_resets_are_limited_once_confirmed(limits, frozen, learner, tiny_lab):
    limits["reset"] = {"user": "1/h", "ip": "100/h"}
    start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    # Asking "are you sure?" is not a reset.
    assert as_learner.post(f"{LAB}/sandbox/reset/").status_code == 400
    assert as_learner.post(f"{LAB}/sandbox/reset/").status_code == 400
    assert as_learner.post(f"{LAB}/sandbox/reset/", {"confirm": "yes"}).status_code == 302
    again = as_learner.post(f"{LAB}/steps/configure/reset/", {"confirm": "yes"})
    assert again.status_code == 429 and "too many resets (1 per hour)" in again.text
    assert Sandbox.objects.filter(owner=learner).count() == 2  # the first reset's only


def test_anonymous_lab_starts_are_limited_per_address(limits, frozen, tiny_lab):
    limits["begin"] = {"user": "100/h", "ip": "2/h"}
    for name in ("One", "Two"):
        assert Client().post(f"{LAB}/begin/", {"name": name}).status_code == 302
    refused = Client().post(f"{LAB}/begin/", {"name": "Three"})
    assert refused.status_code == 429
    assert "Too many lab starts are coming from your network (2 per hour" in refused.text
    assert Sandbox.objects.count() == 2
    assert not get_user_model().objects.filter(first_name="Three").exists()


def test_join_attempts_are_limited_per_address(limits, frozen, tiny_lab):
    limits["join"] = {"user": "100/10m", "ip": "3/10m"}
    Workshop.objects.create(
        title="Tiny",
        join_code="RIGHT1",
        lab_ids=[tiny_lab.id],
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    guesser = Client()
    for code in ("AAAAAA", "AAAAAB", "AAAAAC"):
        assert guesser.post("/join/", {"code": code, "name": "Eve"}).status_code == 400
    # Even the right code is refused now: guessing stops paying.
    refused = guesser.post("/join/", {"code": "RIGHT1", "name": "Eve"})
    assert refused.status_code == 429 and "attempts to join a workshop" in refused.text
    assert not Enrolment.objects.exists()
    assert guesser.get("/join/").status_code == 200  # the form itself is not counted


def test_default_limits_let_a_classroom_of_100_behind_one_address_work(settings, frozen, tiny_lab):
    """Each of 100 learners joins, starts the lab and runs a command, all from one
    NAT address within the same minute."""
    settings.RATELIMIT_ENABLE = True
    cache.clear()
    Workshop.objects.create(
        title="Tiny",
        join_code="CLASS1",
        lab_ids=[tiny_lab.id],
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    browser, sessions = Client(), []  # one client, one session cookie per learner
    for number in range(100):
        browser.cookies.clear()
        assert browser.post("/join/", {"code": "CLASS1", "name": f"L{number}"}).status_code == 302
        assert browser.post(f"{LAB}/begin/").status_code == 302
        sessions.append(browser.cookies["sessionid"].value)
    Sandbox.objects.update(state=Sandbox.State.READY)
    for session, sandbox in zip(sessions, Sandbox.objects.order_by("owner_id"), strict=True):
        browser.cookies["sessionid"] = session
        assert run(browser, sandbox, **HTMX).status_code == 202
    assert CommandRun.objects.count() == 100


def test_the_limit_counts_in_redis(limits, frozen, learner, tiny_lab, settings, redis_server):
    """The production path: django-ratelimit counting in the shared Redis cache."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "labapp",
        }
    }
    limits["run"] = {"user": "2/m", "ip": "100/m"}
    sandbox = start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    assert [run(as_learner, sandbox, **HTMX).status_code for _ in range(3)] == [202, 202, 429]
    assert redis.Redis.from_url(redis_server.url).keys("labapp:1:rl:*")
    frozen.shift(dt.timedelta(minutes=1))
    assert run(as_learner, sandbox, **HTMX).status_code == 202


def test_a_cache_outage_does_not_lock_learners_out(
    limits, learner, tiny_lab, settings, unused_tcp_port, caplog
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_tcp_port}/0",
        }
    }
    limits["run"] = {"user": "1/m", "ip": "1/m"}
    sandbox = start_lab(learner, tiny_lab)
    as_learner = logged_in(learner)
    with caplog.at_level(logging.WARNING, logger="labapp.learning.limits"):
        assert [run(as_learner, sandbox, **HTMX).status_code for _ in range(2)] == [202, 202]
    assert "rate limit run not counted: ConnectionError" in caplog.text


@pytest.mark.parametrize("rate", ["lots", "30", "0/m", "30/0m", "30/w"])
def test_a_malformed_rate_stops_start_up(monkeypatch, rate):
    monkeypatch.setenv("LABAPP_RATELIMIT_RUN_USER", rate)
    with pytest.raises(ImproperlyConfigured, match=r"LABAPP_RATELIMIT_RUN_USER=.* is not a rate"):
        labapp_settings._env_rate("LABAPP_RATELIMIT_RUN_USER", "30/m")
    monkeypatch.setenv("LABAPP_RATELIMIT_RUN_USER", "300/10m")
    assert labapp_settings._env_rate("LABAPP_RATELIMIT_RUN_USER", "30/m") == "300/10m"
