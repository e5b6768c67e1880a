"""The limits a learner's processes run under come from the site's settings."""

from __future__ import annotations

from django.test import override_settings

from labapp.runs.services import run_limits
from labapp.shell.limits import DEFAULT_LIMITS


@override_settings(RUN_NICE=7)
def test_learner_processes_take_the_sites_niceness() -> None:
    limits = run_limits()
    assert limits.nice == 7
    assert limits.cpu_seconds == DEFAULT_LIMITS.cpu_seconds  # the rest stays the shell's


@override_settings(RUN_NICE=0)
def test_a_niceness_of_zero_leaves_them_at_the_workers() -> None:
    assert run_limits().nice == 0
