"""`labs validate` on broken fixtures: each problem named with file, line and reason."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from labapp.catalog.loader import LabInvalid, load_lab, validate_labs
from tests.fixtures.catalog import TEST_LABS

BROKEN = Path(__file__).parent / "broken_labs"


def problems_of(case: str) -> list[str]:
    _, problems = validate_labs(BROKEN / case)
    return [str(p).replace(str(BROKEN / case) + "/", "") for p in problems]


def test_unknown_check_kind():
    [problem] = problems_of("unknown-check-kind")
    assert problem.startswith("lab.yaml:15: unknown check kind 'colour'; known kinds: absent,")


def test_step_without_checks():
    assert problems_of("no-checks") == [
        "lab.yaml:7: step 'first' has no checks; every step needs at least one"
    ]


def test_missing_kustomize_folder():
    [problem] = problems_of("missing-kustomize")
    assert problem.startswith("lab.yaml:13: -k kustomize/overlay: kustomize folder ")
    assert problem.endswith("kustomize/overlay does not exist")


def test_duplicate_step_id():
    assert problems_of("duplicate-step") == [
        "lab.yaml:13: duplicate step id 'same' (first used on line 7)"
    ]


def test_templates_naming_unknown_namespaces_in_yaml_and_markdown():
    assert problems_of("unknown-namespace") == [
        "lab.yaml:11: {{ ns.catalog }} names an unknown namespace 'catalog' (declared: demo)",
        "steps/first.md:4: {{ ns.orders }} names an unknown namespace 'orders' (declared: demo)",
    ]


def test_malformed_yaml():
    [problem] = problems_of("bad-yaml")
    assert problem.startswith("lab.yaml:6: not valid YAML")


def test_a_command_the_restricted_shell_refuses():
    [problem] = problems_of("refused-command")
    assert problem.startswith("lab.yaml:11: the restricted shell refuses this command: ")
    assert "`;`" in problem


def test_validate_command_reports_every_problem_and_exits_non_zero():
    err = StringIO()
    with pytest.raises(CommandError, match=r"\d+ problem\(s\)"):
        call_command("labs", "validate", str(BROKEN), stderr=err)
    lines = err.getvalue().splitlines()
    cases = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())
    for case in cases:
        assert any(f"/{case}/" in line for line in lines), f"nothing reported for {case}"
    assert all(":" in line for line in lines)


def test_load_lab_raises_with_all_problems():
    with pytest.raises(LabInvalid) as invalid:
        load_lab(BROKEN / "unknown-namespace")
    assert len(invalid.value.problems) == 2


def test_the_shipped_labs_are_valid():
    out = StringIO()
    call_command("labs", "validate", stdout=out)
    # In the module's order (lab_steps/modules.yaml), not alphabetically.
    assert "3 lab(s) valid: pss-privileged, pss-baseline, pss-restricted" in out.getvalue()
    labs, problems = validate_labs(settings.LAB_STEPS_DIR)
    assert problems == []
    baseline = next(lab for lab in labs if lab.id == "pss-baseline")
    assert [s.id for s in baseline.steps] == [
        "label-namespace",
        "recycle-pods",
        "inspect-status",
        "fix-deployment",
    ]


def test_the_test_labs_are_valid():
    out = StringIO()
    call_command("labs", "validate", str(TEST_LABS), stdout=out)
    assert "2 lab(s) valid: tiny, tiny-privileged" in out.getvalue()
