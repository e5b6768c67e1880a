"""What kubectl may be asked to do, as data: its subcommands and the flags we judge.

kubectl has hundreds of flags; these tables name the ones that matter here. Flags
not named are left to kubectl, which is why `KUBECTL_FLAGS` reads values warily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from labapp.shell.policy.flags import FlagTable, names

SUBCOMMANDS = names(
    """
    get describe apply create delete label annotate patch logs exec rollout scale explain
    version api-resources api-versions wait kustomize auth events run expose set replace
    cluster-info top
    """
)

_SHARED_NODES = "nodes are shared by every learner"
OPENS_EDITOR = "it opens an editor; use `kubectl patch` or `kubectl apply` instead"

REFUSED_SUBCOMMANDS = {
    "config": "it reads and changes kubeconfig files, and the lab sets your credentials",
    "proxy": "it opens a proxy to the API server on this machine",
    "plugin": "plugins are programs on this machine, not part of the lab",
    "kuberc": "it changes kubectl's preference files",
    "edit": OPENS_EDITOR,
    "cp": "it copies files to and from this machine",
    "attach": "interactive sessions are not available here",
    "port-forward": "it opens ports on this machine",
    "debug": "debug sessions are interactive and can reach the node",
    "certificate": "approving certificates is for cluster administrators",
    **dict.fromkeys(("drain", "cordon", "uncordon", "taint"), _SHARED_NODES),
    "completion": "shell completion is not needed in the lab",
    "alpha": "alpha commands are not part of the lab",
    "diff": "it runs an external diff program on this machine",
}

AUTH_SUBCOMMANDS = names("can-i whoami")
# Subcommands that could start an interactive session.
INTERACTIVE_SUBCOMMANDS = names("exec run")
INTERACTIVE_FLAGS = names("stdin tty attach")

# Global flags that accept a value; only these (and the booleans below) may come
# before the subcommand, which is also what kubectl itself accepts there.
GLOBAL_VALUE_FLAGS = names(
    """
    namespace request-timeout v log-flush-frequency kubeconfig server token as as-group
    as-uid as-user-extra context cluster user username password certificate-authority
    client-certificate client-key tls-server-name cache-dir proxy-url kuberc profile
    profile-output vmodule
    """
)
GLOBAL_BOOL_FLAGS = names(
    "match-server-version warnings-as-errors disable-compression insecure-skip-tls-verify help"
)

CREDENTIALS = "the lab chooses the cluster and your credentials"
KUSTOMIZE_FUNCTIONS = "kustomize functions do not run in the lab"
_CREDENTIAL_FLAGS = names(
    """
    kubeconfig server token as as-group as-uid as-user-extra context cluster user username
    password insecure-skip-tls-verify certificate-authority client-certificate client-key
    tls-server-name proxy-url
    """
)
_PROFILING = "it writes profiling files on this machine"
_NO_HELM = "helm is not available in the lab"
_NO_NETWORK = "kustomize functions have no network in the lab"

# Flags refused wherever they appear: they reach outside the learner's sandbox.
SANDBOX_FLAGS = {
    **dict.fromkeys(sorted(_CREDENTIAL_FLAGS), CREDENTIALS),
    "cache-dir": "the lab manages kubectl's cache",
    "kuberc": "it reads a kubectl preferences file from this machine",
    **dict.fromkeys(("profile", "profile-output"), _PROFILING),
    "output-directory": "it writes files on this machine",
    "vmodule": "detailed logging prints request details, including credentials",
    "edit": OPENS_EDITOR,
    # kustomize's ways to run programs or read outside the lab's directory.
    "enable-helm": "it runs helm, a program on this machine",
    "helm-command": "it runs a program on this machine",
    **dict.fromkeys(("helm-api-versions", "helm-kube-version", "helm-debug"), _NO_HELM),
    "enable-exec": "it runs programs on this machine",
    "enable-alpha-plugins": "kustomize plugins run programs on this machine",
    "load-restrictor": "it lets kustomize read files outside the lab's directory",
    "mount": "it mounts files from this machine into kustomize functions",
    **dict.fromkeys(("network", "network-name"), _NO_NETWORK),
    "as-current-user": KUSTOMIZE_FUNCTIONS,
}

# Long flags that take a value in every subcommand that has them. Used to find
# positional words and to read a value given as the next word.
_VALUE_FLAGS = GLOBAL_VALUE_FLAGS | names(
    """
    output selector filename kustomize container template field-selector sort-by
    label-columns from-file from-env-file from-literal patch-file patch type cert key image
    replicas port target-port for timeout since since-time tail limit-bytes chunk-size
    labels overrides env containers subresource raw field-manager grace-period
    current-replicas to-revision resource-version api-group pod-running-timeout
    """
)

# Short letters that take a value; in `logs`, `-f` (follow) and `-p` (previous) do not.
_VALUE_LETTERS = frozenset("nsvolfkLpcer")
_MOST_SUBCOMMANDS = FlagTable(
    value_longs=_VALUE_FLAGS,
    value_shorts=_VALUE_LETTERS,
    underscores_are_dashes=True,
    values_may_be_flags=True,
)
KUBECTL_FLAGS = replace(
    _MOST_SUBCOMMANDS,
    subcommands={
        "logs": replace(_MOST_SUBCOMMANDS, value_shorts=_VALUE_LETTERS - frozenset("fp")),
    },
)

# The long flag a short letter stands for, where the letter takes a value ...
VALUE_LETTER_NAMES = {
    "n": "namespace",
    "s": "server",
    "v": "v",
    "o": "output",
    "f": "filename",
    "k": "kustomize",
    "e": "env",
}
# ... and the boolean letters we judge.
BOOL_LETTER_NAMES = {"i": "stdin", "t": "tty", "h": "help"}


@dataclass(frozen=True)
class PathFlag:
    """A flag that names local files, which must stay inside the lab's directory."""

    comma_list: bool = False  # `-f a.yaml,b.yaml`
    keyed: bool = False  # `--from-file=key=path`


PATH_FLAGS = {
    "filename": PathFlag(comma_list=True),
    "kustomize": PathFlag(),
    "from-file": PathFlag(comma_list=True, keyed=True),
    "from-env-file": PathFlag(comma_list=True),
    "patch-file": PathFlag(),
    "cert": PathFlag(),
    "key": PathFlag(),
}

MAX_VERBOSITY = 6

# Subresources that open a session into a pod or node, or reach through the API
# server into the cluster's network; `--raw` must not reach them.
SESSION_SUBRESOURCES = re.compile(r"/(exec|attach|portforward|proxy)(/|$)")
SESSION_SUBRESOURCE_REASON = (
    "it reaches a pod's or node's exec, attach, port-forward or proxy endpoint; "
    "commands run in containers only as `kubectl exec POD -- COMMAND`"
)
