"""What a lab declares beyond its steps: the images it runs privileged and the
commands a learner may exec. Each problem names its file and line."""

from __future__ import annotations

import re

from labapp.catalog.loader import validate_labs

TINY_EXEC = "kubectl -n {{ ns.shop }} exec $(kubectl -n {{ ns.shop }} get pods -o name) -- whoami"


def problems(lab_copy, lab_id: str = "tiny") -> list[str]:
    _, found = validate_labs(lab_copy.root / lab_id)
    return [re.sub(r"^.*/lab\.yaml:(\d+): ", r"\1: ", str(p)) for p in found]


def test_the_shipped_labs_declare_the_assets_image_and_whoami(settings):
    labs, found = validate_labs(settings.BASE_DIR / "lab_steps")
    assert found == []
    by_id = {lab.id: lab for lab in labs}
    image = "public.ecr.aws/aws-containers/retail-store-sample-assets:0.4.0"
    assert by_id["pss-privileged"].privileged_images == (image,)
    assert by_id["pss-baseline"].privileged_images == (image,)
    assert by_id["pss-restricted"].privileged_images == ()
    assert by_id["pss-baseline"].exec_commands == ("whoami",)
    assert by_id["pss-restricted"].exec_commands == ()


def test_privileged_images_must_be_pinned_image_references_listed_once(lab_copy):
    def declare(lab: dict) -> None:
        lab["privileged_images"] = [
            "registry.example/shop:1.0",
            "registry.example/shop",
            "Not An Image",
            "registry.example/shop:1.0",
            "registry.example:5000/a/b@sha256:" + "0" * 64,
        ]

    lab_copy.edit("tiny", declare)
    found = problems(lab_copy)
    assert [p.split(": ", 1)[1] for p in found] == [
        "privileged image 'registry.example/shop' must name a tag or a digest",
        "privileged image 'Not An Image' is not an image reference",
        "privileged image 'registry.example/shop:1.0' is listed twice",
    ]
    assert all(re.match(r"\d+: ", p) for p in found)


def test_the_old_needs_key_points_to_privileged_images(lab_copy):
    lab_copy.edit("tiny", lambda lab: lab.update(needs=["privileged-pods"]))
    [problem] = problems(lab_copy)
    assert "`needs` is gone" in problem and "privileged_images" in problem


def test_a_kubectl_exec_in_a_step_must_be_declared_in_its_exec(lab_copy):
    def exec_undeclared(lab: dict) -> None:
        lab["steps"][0]["commands"].append({"run": TINY_EXEC, "real_nodes_only": True})

    lab_copy.edit("tiny", exec_undeclared)
    [problem] = problems(lab_copy)
    assert problem.endswith(
        "`kubectl exec` runs `whoami` in a container, but the step's `exec` does not declare it"
    )

    def declared(lab: dict) -> None:
        lab["steps"][0]["exec"] = ["whoami", "cat /etc/os-release"]

    lab_copy.edit("tiny", declared)
    assert problems(lab_copy) == []
    [lab], _ = validate_labs(lab_copy.root / "tiny")
    assert lab.steps[0].exec_commands == ("whoami", "cat /etc/os-release")
    assert lab.exec_commands == ("whoami", "cat /etc/os-release")


def test_an_exec_command_must_be_a_command_line(lab_copy):
    lab_copy.edit("tiny", lambda lab: lab["steps"][0].update(exec=["", "echo 'unclosed"]))
    found = problems(lab_copy)
    assert len(found) == 2
    assert all(p.endswith("an exec command must be a non-empty command line") for p in found)
