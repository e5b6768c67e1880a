"""Which lane of workers runs a command, so that quick commands never queue behind slow ones.

Measured on kubectl v1.37 against the local control plane: a `get` costs kubectl about
0.05 CPU-seconds and `kustomize` about 0.2, while `apply -k` of a lab folder costs about
0.75 (most of it parsing the API's OpenAPI schema) and `wait`, `rollout status`,
`delete` (which waits for the objects to go), a watch or `logs -f` last as long as the
cluster takes. When both kinds share one set of worker slots, a class's gets wait for
applies to end. The rule is a list of what is quick; anything else, including what this
module has never heard of, goes to the slow lane, where it can only delay its own kind.
"""

from __future__ import annotations

import enum

from labapp.shell.parse import Pipeline, Stage, Substitution
from labapp.shell.policy.flags import names
from labapp.shell.policy.kubectl import kubectl_intent
from labapp.shell.policy.messages import DYNAMIC


class Lane(enum.StrEnum):
    QUICK = "quick"
    SLOW = "slow"


# Reads, and writes the API server answers at once without the OpenAPI schema.
QUICK_KUBECTL = names(
    """
    get describe logs explain version api-resources api-versions kustomize auth events
    label annotate patch scale top cluster-info
    """
)
# Flags that keep a quick subcommand running until the cluster changes or time runs out.
_WAITING_FLAGS = frozenset({"watch", "watch-only", "w", "wait"})
_FOLLOW_FLAGS = frozenset({"follow", "f"})  # `logs -f`


def command_lane(pipeline: Pipeline) -> Lane:
    """SLOW if any stage, or any stage of a `$(...)`, is slow."""
    return Lane.SLOW if any(_slow(stage) for stage in _stages(pipeline)) else Lane.QUICK


def _stages(pipeline: Pipeline) -> list[Stage]:
    found: list[Stage] = []
    for stage in pipeline.stages:
        found.append(stage)
        for word in stage.words:
            for piece in word:
                if isinstance(piece, Substitution):
                    found += _stages(piece.pipeline)
    return found


def _slow(stage: Stage) -> bool:
    if stage.program != "kubectl":
        return False  # yq, grep, head, tail, wc: they read a pipe
    subcommand, flags = kubectl_intent(stage.static_args())
    if subcommand is None or DYNAMIC in subcommand or subcommand not in QUICK_KUBECTL:
        return True
    if flags & _WAITING_FLAGS:
        return True
    return subcommand == "logs" and bool(flags & _FOLLOW_FLAGS)
