"""The local paths kubectl's flags name, read as the policy reads them (the catalog uses this)."""

from __future__ import annotations

import pytest

from labapp.shell.policy import PathArg, kubectl_path_args


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["apply", "-k", "assets/x"], [PathArg("-k", "assets/x", kustomization=True)]),
        (["apply", "-kassets/x"], [PathArg("-k", "assets/x", kustomization=True)]),
        (["apply", "--kustomize=a/b"], [PathArg("--kustomize", "a/b", kustomization=True)]),
        (["-n", "ns", "apply", "-f=x.yaml"], [PathArg("-f", "x.yaml", kustomization=False)]),
        (
            ["apply", "-f", "a.yaml,b/c.yaml"],
            [PathArg("-f", "a.yaml", False), PathArg("-f", "b/c.yaml", False)],
        ),
        (
            ["create", "configmap", "x", "--from-file=key=data/a", "--from-env-file", "e.env"],
            [PathArg("--from-file", "data/a", False), PathArg("--from-env-file", "e.env", False)],
        ),
        (["apply", "-f", "-"], []),  # stdin
        (["logs", "-f", "pod/x"], []),  # `-f` is --follow here
        (["apply", "-k"], []),  # kubectl reports the missing value
        (["exec", "pod/x", "--", "cat", "-f", "x"], []),  # after `--`: the pod's command
    ],
)
def test_path_flags_are_found(args: list[str], expected: list[PathArg]) -> None:
    assert kubectl_path_args(args) == expected
