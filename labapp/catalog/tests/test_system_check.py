"""`manage.py check` validates the deployment's labs: a broken lab stops start-up with
each problem at its file:line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from labapp.catalog.checks import labs_are_valid
from tests.fixtures.catalog import TEST_LABS

BROKEN = Path(__file__).parent / "broken_labs"


def test_valid_labs_pass(settings):
    settings.LAB_STEPS_DIR = TEST_LABS
    assert labs_are_valid() == []


def test_the_shipped_labs_pass():
    assert labs_are_valid() == [], "lab_steps/ has problems: run `manage.py labs validate`"


def test_each_problem_of_a_broken_lab_is_an_error_with_its_file_and_line(settings):
    settings.LAB_STEPS_DIR = BROKEN / "duplicate-step"
    [error] = labs_are_valid()
    assert error.id == "catalog.E001"
    assert error.is_serious()
    assert error.msg == (
        f"{BROKEN / 'duplicate-step' / 'lab.yaml'}:13: duplicate step id 'same' "
        "(first used on line 7)"
    )


def test_check_fails_naming_every_broken_lab(settings):
    settings.LAB_STEPS_DIR = BROKEN
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    report = str(raised.value)
    for case in sorted(p.name for p in BROKEN.iterdir() if p.is_dir()):
        assert f"/{case}/lab.yaml:" in report or f"/{case}/steps/" in report, case
    assert "unknown-check-kind/lab.yaml:15: unknown check kind 'colour'" in report
    # Only this check, by its tag.
    with pytest.raises(SystemCheckError):
        call_command("check", "--tag", "labs")


def test_manage_py_check_exits_non_zero_on_a_broken_lab():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "LABAPP_LAB_STEPS_DIR": str(BROKEN / "unknown-namespace"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "unknown-namespace/lab.yaml:11: {{ ns.catalog }} names an unknown namespace" in (
        result.stderr
    )
    assert "unknown-namespace/steps/first.md:4:" in result.stderr
