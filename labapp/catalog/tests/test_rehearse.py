"""`labs rehearse` against the real local control plane: the shipped labs, the
test labs, and the rehearsal's rules (on a copy of the tiny test lab)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.fixtures.catalog import TEST_LABS
from tests.fixtures.cluster import write_unreachable_kubeconfig

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


def test_the_test_labs_rehearse_green(local_cluster):
    """The labs the other tests lean on keep their promise: each check fails
    before its step and passes after it."""
    out = StringIO()
    call_command(
        "labs",
        "rehearse",
        "--all",
        "--path",
        str(TEST_LABS),
        "--kubeconfig",
        str(local_cluster.kubeconfig_path),
        stdout=out,
    )
    report = out.getvalue()
    assert "rehearsal passed for 2 lab(s)" in report
    for lab in ("tiny", "tiny-privileged"):
        assert f"== {lab}: PASS" in report


# The rehearsal's own rules, shown on a copy of the tiny test lab.


def rehearse_tiny(lab_copy, kubeconfig) -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="rehearsal failed for: tiny"):
        call_command(
            "labs",
            "rehearse",
            "tiny",
            "--path",
            str(lab_copy.root),
            "--kubeconfig",
            str(kubeconfig),
            stdout=out,
        )
    return out.getvalue()


def test_a_check_that_already_passes_before_its_step_is_a_violation(lab_copy, local_cluster):
    def only_trivial_checks(lab):
        lab["steps"][0]["checks"] = [
            {"kind": "exists", "object": {"kind": "Namespace", "name": "{{ ns.shop }}"}}
        ]
        lab["steps"] = lab["steps"][:1]

    lab_copy.edit("tiny", only_trivial_checks)
    report = rehearse_tiny(lab_copy, local_cluster.kubeconfig_path)
    assert "every check passes before the step is done, so the checks prove nothing" in report


def test_a_check_that_still_fails_after_its_step_is_a_violation(lab_copy, local_cluster):
    def wrong_expectation(lab):
        lab["steps"][0]["checks"][0]["equals"] = "baseline"
        lab["steps"] = lab["steps"][:1]

    lab_copy.edit("tiny", wrong_expectation)
    report = rehearse_tiny(lab_copy, local_cluster.kubeconfig_path)
    assert re.search(
        r"failed after the step: expected label pod-security\.kubernetes\.io/enforce="
        r"baseline on Namespace shop-[a-z0-9]+; found: "
        r"pod-security\.kubernetes\.io/enforce=restricted",
        report,
    )


def test_rehearsal_against_an_unreachable_cluster_says_so(lab_copy, tmp_path, unused_tcp_port):
    kubeconfig = write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port)
    with pytest.raises(CommandError, match=r"cannot rehearse tiny: .*could not be reached"):
        call_command(
            "labs",
            "rehearse",
            "tiny",
            "--path",
            str(lab_copy.root),
            "--kubeconfig",
            str(kubeconfig),
            stdout=StringIO(),
        )
