"""`labs rehearse` against the real local control plane."""

from __future__ import annotations

import re
import shutil
from io import StringIO

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


def test_rehearse_all_is_green_for_the_pod_security_labs(local_cluster):
    out = StringIO()
    call_command(
        "labs", "rehearse", "--all", "--kubeconfig", str(local_cluster.kubeconfig_path), stdout=out
    )
    report = out.getvalue()
    print(report)  # the per-step tables are the rehearsal's evidence
    assert "rehearsal passed for 3 lab(s)" in report
    for lab in ("pss-privileged", "pss-baseline", "pss-restricted"):
        assert f"== {lab}: PASS" in report
    # Each check is shown failing before its step and passing after it.
    assert re.search(
        r"label pod-security\.kubernetes\.io/enforce=baseline on Namespace "
        r"assets-[a-z0-9]+ +fail +pass",
        report,
    )
    assert re.search(r"condition ReplicaFailure=True, reason FailedCreate.* +pass +pass", report)
    assert "(skipped on simulated nodes: kubectl -n {{ ns.assets }} exec" in report


@pytest.fixture
def lab_copy(tmp_path):
    root = tmp_path / "lab_steps"
    shutil.copytree(settings.LAB_STEPS_DIR / "components", root / "components")
    shutil.copytree(settings.LAB_STEPS_DIR / "pss-baseline", root / "pss-baseline")
    return root


def edit_lab(root, change) -> None:
    path = root / "pss-baseline" / "lab.yaml"
    lab = yaml.safe_load(path.read_text())
    change(lab)
    path.write_text(yaml.safe_dump(lab, sort_keys=False))


def test_a_check_that_already_passes_before_its_step_is_a_violation(lab_copy, local_cluster):
    def only_trivial_checks(lab):
        lab["steps"][0]["checks"] = [
            {"kind": "exists", "object": {"kind": "Namespace", "name": "{{ ns.assets }}"}}
        ]
        lab["steps"] = lab["steps"][:1]

    edit_lab(lab_copy, only_trivial_checks)
    out = StringIO()
    with pytest.raises(CommandError, match="rehearsal failed for: pss-baseline"):
        call_command(
            "labs",
            "rehearse",
            "pss-baseline",
            "--path",
            str(lab_copy),
            "--kubeconfig",
            str(local_cluster.kubeconfig_path),
            stdout=out,
        )
    assert "every check passes before the step is done, so the checks prove nothing" in (
        out.getvalue()
    )


def test_a_check_that_still_fails_after_its_step_is_a_violation(lab_copy, local_cluster):
    def wrong_expectation(lab):
        lab["steps"][0]["checks"][0]["equals"] = "restricted"
        lab["steps"] = lab["steps"][:1]

    edit_lab(lab_copy, wrong_expectation)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "labs",
            "rehearse",
            "pss-baseline",
            "--path",
            str(lab_copy),
            "--kubeconfig",
            str(local_cluster.kubeconfig_path),
            stdout=out,
        )
    assert re.search(
        r"failed after the step: expected label pod-security\.kubernetes\.io/enforce="
        r"restricted on Namespace assets-[a-z0-9]+; found: "
        r"pod-security\.kubernetes\.io/enforce=baseline",
        out.getvalue(),
    )


def test_rehearsal_against_an_unreachable_cluster_says_so(lab_copy, tmp_path, unused_tcp_port):
    from tests.fixtures.cluster import write_unreachable_kubeconfig

    kubeconfig = write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port)
    with pytest.raises(CommandError, match=r"cannot rehearse pss-baseline: .*could not be reached"):
        call_command(
            "labs",
            "rehearse",
            "pss-baseline",
            "--path",
            str(lab_copy),
            "--kubeconfig",
            str(kubeconfig),
            stdout=StringIO(),
        )
