"""The lab format's alternatives, mistakes, `already_holds`, seed page and modules:
how they are read and validated (file:line), and how a mistake reaches the learner.
No cluster: checks here read an in-memory reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from labapp.catalog.diagnosis import Diagnosed, unwrap
from labapp.catalog.loader import validate_labs
from labapp.catalog.modules import in_module_order, read_modules
from labapp.catalog.seed import map_seed_command
from labapp.checks.base import CheckContext, RunOutput
from labapp.checks.evaluate import evaluate_step
from labapp.checks.kinds import parse_check
from labapp.checks.outcome import Status
from labapp.clusters.objects import KubeObject

BROKEN = Path(__file__).parent / "broken_labs"


@dataclass
class MemoryReader:
    """Objects by (kind, name): enough for label and CEL checks on a Namespace."""

    objects: dict[tuple[str, str], dict] = field(default_factory=dict)

    def get(self, *, api_version: str, kind: str, name: str, namespace: str | None):
        body = self.objects.get((kind, name))
        return KubeObject(kind, name, namespace, body) if body is not None else None

    def list(self, *, api_version: str, kind: str, namespace: str | None, label_selector):
        return [KubeObject(k, n, namespace, b) for (k, n), b in self.objects.items() if k == kind]


def namespace(labels: dict[str, str]) -> MemoryReader:
    return MemoryReader(
        {("Namespace", "demo-x1"): {"metadata": {"name": "demo-x1", "labels": labels}}}
    )


# -- validation, with file and line ---------------------------------------------


def test_alternatives_and_mistakes_written_wrong_are_each_named_at_their_line():
    _, problems = validate_labs(BROKEN / "bad-attempts")
    found = [str(p).replace(str(BROKEN / "bad-attempts") + "/", "") for p in problems]
    assert found == [
        "lab.yaml:17: `already_holds` must say why the check may pass before its step",
        "lab.yaml:20: the restricted shell refuses this command: `;` is refused: run one "
        "command at a time",
        "lab.yaml:21: alternative 'no commands' needs commands",
        "lab.yaml:22: alternative 'the same, once more' is listed twice (first on line 19)",
        "lab.yaml:24: unknown alternative key 'extra'",
        "lab.yaml:28: mistake 'names a check that is not there' names check 'no such check', "
        "which is not a titled check of this step (titled checks: 'kubectl found no pods')",
        "lab.yaml:35: a mistake's message must not use {{ ns.X }} placeholders",
        "lab.yaml:39: unknown check kind 'colour'; known kinds: absent, annotation, cel, "
        "condition, exists, field, label, output, pod_count",
        "lab.yaml:46: `settle` must be 0 to 60 seconds",
        "lab.yaml:47: a mistake needs `when`: a check that recognises it",
        "lab.yaml:55: this message is also used on line 45",
    ]


def test_a_mistakes_check_is_wrapped_and_names_the_mistake_only_while_failing(lab_copy):
    def add_mistake(lab: dict) -> None:
        step = lab["steps"][0]
        step["checks"][0]["title"] = "the namespace enforces Restricted"
        step["mistakes"] = [
            {
                "title": "set only warn",
                "commands": [
                    "kubectl label namespace {{ ns.shop }} "
                    "pod-security.kubernetes.io/warn=restricted"
                ],
                "check": "the namespace enforces Restricted",
                "when": {
                    "kind": "label",
                    "object": {"kind": "Namespace", "name": "{{ ns.shop }}"},
                    "key": "pod-security.kubernetes.io/warn",
                    "equals": "restricted",
                },
                "message": "warn only warns: set enforce.",
            }
        ]

    lab_copy.edit("tiny", add_mistake)
    [lab], problems = validate_labs(lab_copy.root / "tiny")
    assert problems == []
    step = lab.steps[0]
    assert isinstance(step.checks[0], Diagnosed)
    assert unwrap(step.checks[0]).title == "the namespace enforces Restricted"
    assert step.checks[0].reads() == {("v1", "Namespace")}
    names = {"shop": "demo-x1"}

    def judge(labels: dict[str, str]):
        return evaluate_step(
            step.checks[:1], namespaces=names, reader=namespace(labels), wait=False
        )[0]

    warned = judge({"pod-security.kubernetes.io/warn": "restricted"})
    assert warned.status is Status.FAIL and warned.detail == "warn only warns: set enforce."
    assert step.mistake_for(warned.detail).title == "set only warn"
    plain = judge({})
    assert plain.status is Status.FAIL and plain.detail == ""
    done = judge(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    assert done.status is Status.PASS and done.detail == ""


# -- the shipped labs --------------------------------------------------------------


def test_every_shipped_step_has_two_alternatives_and_two_mistakes():
    labs, problems = validate_labs(settings.LAB_STEPS_DIR)
    assert problems == []
    assert [lab.id for lab in labs] == ["pss-privileged", "pss-baseline", "pss-restricted"]
    for lab in labs:
        for step in lab.steps:
            assert len(step.alternatives) >= 2, f"{lab.id}/{step.id}: alternatives"
            assert len(step.mistakes) >= 2, f"{lab.id}/{step.id}: mistakes"


def test_the_shipped_fixes_keep_the_labels_and_admit_root_under_baseline():
    labs, _ = validate_labs(settings.LAB_STEPS_DIR)
    by_id = {lab.id: lab for lab in labs}
    fix = by_id["pss-baseline"].step("fix-deployment")
    titles = [unwrap(c).display_title() for c in fix.checks]
    assert "the namespace still enforces Baseline" in titles
    assert not any("root" in title for title in titles)  # root is an observation now
    harden = by_id["pss-restricted"].step("harden-deployment")
    assert "the namespace still enforces Restricted" in [unwrap(c).title for c in harden.checks]
    assert "four" not in " ".join(harden.hints)
    assert "runAsUser: 999" in harden.text
    assert "always on" not in by_id["pss-privileged"].steps[0].text
    # Baseline keeps the seed page's steps; the server-side preview opens Restricted.
    assert [s.id for s in by_id["pss-restricted"].steps][:2] == ["preview", "label-namespace"]
    assert [s.id for s in by_id["pss-baseline"].steps] == [
        "label-namespace",
        "recycle-pods",
        "inspect-status",
        "fix-deployment",
    ]


# -- the seed page ------------------------------------------------------------------


def test_seed_commands_map_namespaces_and_folders_but_not_other_names():
    folders = {"/workspace/modules/security/pss-psa": "assets"}

    def mapped(run: str) -> str:
        return map_seed_command(run, ["assets"], folders)

    assert mapped("kubectl -n assets delete pod --all") == (
        "kubectl -n {{ ns.assets }} delete pod --all"
    )
    assert mapped("kubectl get deployment -n assets assets -o yaml | yq '.status'") == (
        "kubectl get deployment -n {{ ns.assets }} assets -o yaml | yq '.status'"
    )
    assert mapped("kubectl apply -k /workspace/modules/security/pss-psa/baseline-workload") == (
        "kubectl apply -k assets/baseline-workload"
    )
    assert mapped("kubectl -n assets exec $(kubectl -n assets get pods -o name) -- whoami") == (
        "kubectl -n {{ ns.assets }} exec $(kubectl -n {{ ns.assets }} get pods -o name) -- whoami"
    )
    assert mapped("kubectl describe namespace assets") == (
        "kubectl describe namespace {{ ns.assets }}"
    )
    assert mapped("kubectl --namespace=assets get pods") == (
        "kubectl --namespace={{ ns.assets }} get pods"
    )


def test_the_baseline_lab_keeps_its_seed_pages_commands_verbatim():
    labs, _ = validate_labs(settings.LAB_STEPS_DIR)
    seed = next(lab for lab in labs if lab.id == "pss-baseline").seed
    assert seed is not None
    runs = [command.run for command in seed.commands]
    assert "kubectl apply -k /workspace/modules/security/pss-psa/baseline-namespace" in runs
    assert "kubectl -n assets delete pod --all" in runs
    assert "kubectl get deployment -n assets assets -o yaml | yq '.status'" in runs


# -- output checks: the forms kubectl prints a fact in --------------------------------


def test_an_output_check_may_list_the_forms_a_fact_is_printed_in():
    check = parse_check(
        {
            "kind": "output",
            "title": "drops ALL",
            "pattern": [r"drop:\s*\n\s*-\s*ALL", r'"drop":\["ALL"\]'],
        }
    )
    as_json = CheckContext(MemoryReader(), [RunOutput('{"capabilities":{"drop":["ALL"]}}', "")])
    assert check.evaluate(as_json).passed
    as_yaml = CheckContext(MemoryReader(), [RunOutput("capabilities:\n  drop:\n    - ALL\n", "")])
    assert check.evaluate(as_yaml).passed
    neither = check.evaluate(CheckContext(MemoryReader(), [RunOutput("nothing", "")]))
    assert neither.status is Status.FAIL
    assert "one of /" in neither.expected


def test_each_alternative_pattern_must_be_a_regex():
    from labapp.checks.base import CheckSpecError

    try:
        parse_check({"kind": "output", "pattern": ["fine", "(unclosed"]})
    except CheckSpecError as exc:
        assert exc.key == "pattern" and "'(unclosed' is not a valid regex" in exc.reason
    else:
        raise AssertionError("a bad regex in the list was accepted")


# -- modules ------------------------------------------------------------------------------


def test_modules_order_labs_and_report_problems_at_their_line(tmp_path):
    (tmp_path / "modules.yaml").write_text(
        "- id: pod-security\n"
        "  title: Pod Security\n"
        "  summary: Three labs.\n"
        "  labs: [b, a, ghost]\n"
        "- id: other\n"
        "  title: Other\n"
        "  summary: Again.\n"
        "  labs: [a]\n"
    )
    modules, problems = read_modules(tmp_path, ["a", "b", "c"])
    assert [str(p).split("modules.yaml:")[1] for p in problems] == [
        "4: module 'pod-security' lists an unknown lab 'ghost'",
        "8: lab 'a' is already in module 'pod-security'",
    ]
    assert modules[0].next_after("b") == "a" and modules[0].next_after("ghost") is None

    @dataclass
    class Lab:
        id: str

    ordered = in_module_order([Lab("a"), Lab("b"), Lab("c")], modules[:1])  # type: ignore[list-item]
    assert [lab.id for lab in ordered] == ["b", "a", "c"]


def test_a_mistakes_text_is_escaped_and_shows_its_code():
    from labapp.catalog.templatetags.catalog_tags import inline_code

    shown = inline_code("Use `kubectl label --overwrite` <b>now</b> & `x<y`")
    assert shown == (
        "Use <code>kubectl label --overwrite</code> &lt;b&gt;now&lt;/b&gt; &amp; "
        "<code>x&lt;y</code>"
    )
