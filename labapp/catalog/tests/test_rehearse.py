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
    try:
        call_command(
            "labs",
            "rehearse",
            "--all",
            "--jobs",
            "6",
            "--kubeconfig",
            str(local_cluster.kubeconfig_path),
            stdout=out,
        )
    finally:
        # The per-step tables are the rehearsal's evidence, and on a failure
        # they are the only account of which step broke and why.
        print(out.getvalue())
    report = out.getvalue()
    assert "rehearsal passed for 3 lab(s)" in report
    # The five proofs, each complete: the solution, every alternative, every mistake,
    # every check failing before its step (or saying why not), the seed page's commands.
    tally = (
        r"solution (\d+)/\1, alternatives (\d+)/\2, mistakes (\d+)/\3, "
        r"fail before (\d+)/\4, seed commands (\d+)/\5"
    )
    for lab in ("pss-privileged", "pss-baseline", "pss-restricted"):
        found = re.search(rf"== {lab}: PASS  \({tally}", report)
        assert found, f"no complete tally for {lab}"
        steps, alternatives, mistakes = (int(found.group(i)) for i in (1, 2, 3))
        assert alternatives >= 2 * steps and mistakes >= 2 * steps
    assert re.search(r"seed commands [1-9]\d*/\d+ \(seed: EKS Workshop", report)
    # Each check is shown failing before its step and passing after it.
    assert re.search(r"the namespace enforces Baseline +fail +pass", report)
    # A check that may hold before its step says why.
    assert re.search(r"the namespace still enforces Baseline +pass\* +pass", report)
    assert "may already hold: set in step 1" in report
    assert re.search(r'mistake "restarted the rollout instead of deleting the pods" \[ok, ', report)
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
    assert "already passes before its step, so it proves nothing" in report


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


def test_rehearsal_fails_each_broken_promise_and_names_it(lab_copy, local_cluster):
    """One step, broken five ways: an alternative that does not pass, a mistake that
    passes, a mistake its `when` never recognises, a check that already holds with
    no reason given (beside one that gives its reason), and a seed command that no
    longer works."""
    label = "the namespace enforces Restricted"

    def broken(lab: dict) -> None:
        lab["steps"] = lab["steps"][:1]
        step = lab["steps"][0]
        step["checks"][0]["title"] = label
        namespace = {"kind": "Namespace", "name": "{{ ns.shop }}"}
        step["checks"] += [
            {"kind": "exists", "title": "the namespace exists", "object": namespace},
            {
                "kind": "exists",
                "title": "the namespace is still there",
                "object": namespace,
                "already_holds": "it exists from the start",
            },
        ]
        step["alternatives"] = [
            {"title": "only a look", "commands": ["kubectl -n {{ ns.shop }} get pods"]}
        ]
        step["mistakes"] = [
            {
                "title": "the solution itself",
                "commands": ["kubectl apply -k shop/restricted"],
                "check": label,
                "when": {"kind": "output", "pattern": "configured"},
                "message": "This is no mistake.",
            },
            {
                "title": "a look, unrecognised",
                "commands": ["kubectl -n {{ ns.shop }} get pods"],
                "check": label,
                "when": {"kind": "output", "pattern": "never printed"},
                "message": "You only looked.",
                "settle": 1,
            },
        ]
        lab["seed"] = {
            "page": "a test page",
            "folders": {"/workspace/shop": "shop"},
            "commands": [
                {"step": "label-namespace", "run": "kubectl -n shop get deployment nothing-here"}
            ],
        }

    lab_copy.edit("tiny", broken)
    report = rehearse_tiny(lab_copy, local_cluster.kubeconfig_path)
    print(report)
    assert re.search(r'alternative "only a look" \[VIOLATION', report)
    assert "the step does not pass: expected label pod-security" in report
    assert re.search(r'mistake "the solution itself" \[VIOLATION', report)
    assert "the step passes after this mistake" in report
    assert f"check '{label}' passes after this mistake" in report
    assert re.search(r'mistake "a look, unrecognised" \[VIOLATION', report)
    assert f"check '{label}' fails, but it names no mistake (`when` did not hold)" in report
    assert re.search(
        r"the namespace exists +pass +pass.*\n +! already passes before its step", report
    )
    assert re.search(r"the namespace is still there +pass\* +pass", report)
    assert "* may already hold: it exists from the start" in report
    assert re.search(r"seed `kubectl -n shop get deployment nothing-here` \[VIOLATION", report)
    assert 'deployments.apps "nothing-here" not found' in report
    assert re.search(
        r"== tiny: FAIL  \(solution 1/1, alternatives 0/1, mistakes 0/2, fail before 4/5, "
        r"seed commands 0/2",
        report,
    )
