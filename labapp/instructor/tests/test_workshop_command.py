"""`manage.py workshop create | list | close`, for operators who script workshops.
Personas: the instructor, and the learner (who holds no role)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from labapp.learning.models import Workshop
from labapp.sandboxes import pools as pool_services
from labapp.sandboxes.models import Sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_cluster(settings, tmp_path, monkeypatch, tiny_lab):
    settings.SANDBOX_HOME = tmp_path
    monkeypatch.setattr(pool_services, "_cleanup", lambda sandbox: True)


def workshop(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("workshop", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_join_code_and_link(settings, instructor):
    settings.PUBLIC_URL = "https://lab.example.org"
    out, err = workshop(
        "create", "--lab", "tiny", "--lab", "tiny-privileged", "--capacity", "12",
        "--starts", "2099-12-04T09:00", "--ends", "+3h", "--title", "Friday PSS",
        "--instructor", instructor.username,
    )  # fmt: skip
    created = Workshop.objects.get()
    assert f"Join code: {created.join_code}" in out
    assert f"Join link: https://lab.example.org/join/{created.join_code}/" in out
    assert "filling from 2099-12-04 08:00 UTC" in out
    assert err == ""
    assert created.title == "Friday PSS"
    assert created.lab_ids == ["tiny", "tiny-privileged"]
    assert created.capacity == 12
    assert created.starts_at == dt.datetime(2099, 12, 4, 9, tzinfo=dt.UTC)
    assert created.ends_at == dt.datetime(2099, 12, 4, 12, tzinfo=dt.UTC)
    assert list(created.instructors.all()) == [instructor]
    assert sorted(p.size for p in created.pools.all()) == [12, 12]


def test_create_with_a_base_url_and_json_for_scripts(learner):
    out, err = workshop(
        "create", "--lab", "tiny", "--capacity", "3", "--base-url", "http://10.0.0.5:8000/",
        "--instructor", learner.username, "--json",
    )  # fmt: skip
    shown = json.loads(out)
    assert shown["link"] == f"http://10.0.0.5:8000/join/{shown['code']}/"
    assert shown["state"] == "open" and shown["pool"]["size"] == 3
    assert shown["title"] == "Tiny: a lab for the tests"  # the first lab's, by default
    assert "does not hold the instructor role" in err  # said, not refused


def test_create_without_an_instructor_says_nobody_sees_the_dashboard():
    _, err = workshop("create", "--lab", "tiny", "--capacity", "3")
    assert "No instructor" in err
    assert not Workshop.objects.get().instructors.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lab", "nope", "--capacity", "3"], "no lab is named 'nope'; the labs are: tiny"),
        (["--lab", "tiny", "--capacity", "0"], "--capacity must be at least 1 (got 0)"),
        (["--lab", "tiny", "--capacity", "-4"], "--capacity must be at least 1 (got -4)"),
        (["--lab", "tiny", "--capacity", "3", "--starts", "tomorrow"], "--starts 'tomorrow'"),
        (["--lab", "tiny", "--capacity", "3", "--ends", "2026-13-40"], "--ends '2026-13-40'"),
        (
            ["--lab", "tiny", "--capacity", "3", "--starts", "+2h", "--ends", "now"],
            "must be after --starts",
        ),
        (
            ["--lab", "tiny", "--capacity", "3", "--starts", "2020-01-01", "--ends", "+1h"],
            "is in the past",
        ),
        (["--lab", "tiny", "--capacity", "3", "--instructor", "ghost"], "'ghost'"),
        (["--lab", "tiny", "--capacity", "3", "--lifetime", "0"], "--lifetime must be"),
    ],
)
def test_create_refuses_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=None) as refused:
        workshop("create", *args)
    assert message in str(refused.value)
    assert not Workshop.objects.exists()


def test_a_capacity_that_is_not_a_number_is_refused_by_the_parser():
    with pytest.raises(CommandError, match="invalid int value"):
        workshop("create", "--lab", "tiny", "--capacity", "many")


def test_list_shows_open_and_upcoming_workshops_with_their_pools():
    workshop("create", "--lab", "tiny", "--capacity", "2", "--title", "Now")
    workshop("create", "--lab", "tiny", "--capacity", "4", "--starts", "+2d", "--title", "Later")
    ended = Workshop.objects.create(
        title="Past",
        join_code="PAST22",
        lab_ids=["tiny"],
        starts_at=timezone.now() - dt.timedelta(hours=3),
        ends_at=timezone.now(),
    )
    now = Workshop.objects.get(title="Now")
    pool = now.pools.get()
    Sandbox.objects.create(pool=pool, lab_id="tiny", slug="abc123", state=Sandbox.State.READY)
    out, _ = workshop("list")
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{now.join_code}  open")
    assert "0/2 joined  pool 1 ready, 0 provisioning, 0 failed, 0 claimed  tiny  Now" in lines[0]
    assert "upcoming" in lines[1] and lines[1].endswith("Later")
    out, _ = workshop("list", "--all", "--json")
    shown = [(row["code"], row["state"]) for row in json.loads(out)]
    assert shown[:2] == [(ended.join_code, "ended"), (now.join_code, "open")]
    assert shown[2][1] == "upcoming"


def test_list_says_when_there_is_nothing():
    assert workshop("list")[0] == "No open or upcoming workshops.\n"


def test_close_ends_the_workshop_and_tears_its_unclaimed_pool_down(learner):
    out, _ = workshop("create", "--lab", "tiny", "--capacity", "3", "--json")
    code = json.loads(out)["code"]
    pool = Workshop.objects.get().pools.get()
    for slug in ("free01", "free02", "taken1"):
        Sandbox.objects.create(pool=pool, lab_id="tiny", slug=slug, state=Sandbox.State.READY)
    Sandbox.objects.filter(slug="taken1").update(owner=learner)
    out, _ = workshop("close", code.lower())
    assert out == f"Workshop {code} closed now; 2 unclaimed pooled sandboxes torn down.\n"
    closed = Workshop.objects.get()
    assert not closed.is_open()
    states = dict(Sandbox.objects.values_list("slug", "state"))
    assert states == {"free01": "deleted", "free02": "deleted", "taken1": "ready"}
    out, _ = workshop("close", code)
    assert "ended at" in out and "0 unclaimed" in out


def test_close_of_an_unknown_code_is_refused():
    with pytest.raises(CommandError, match="no workshop has the code 'NOPE99'"):
        workshop("close", "NOPE99")
