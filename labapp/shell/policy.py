"""What each allowed program may be asked to do, judged on its arguments.

The same check runs twice: on the parsed command, where a `$(...)` is still
unknown (it stands in as DYNAMIC), and again on the real argv just before a
stage starts, because a substitution's output can carry flags of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Stands for the output of a `$(...)` that has not run yet. NUL cannot occur
# in a real argv, so it never collides with anything a learner typed.
DYNAMIC = "\x00"

PROGRAMS = ("kubectl", "yq", "grep", "head", "tail", "wc")


class CommandRefused(ValueError):
    """The command is outside the allowlist; `reason` says what and why, for the learner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def vetted_args(program: str, args: Sequence[str]) -> list[str]:
    """Check `args` against `program`'s policy; return the arguments to run it with."""
    checker = _CHECKERS.get(program)
    if checker is None:
        raise CommandRefused(f"`{program}` is refused: only {', '.join(PROGRAMS)} can be run here")
    for arg in args:
        check_flag_spelling(arg)
    return checker(list(args))


# --- spelling -------------------------------------------------------------------


def _is_dash_like(char: str) -> bool:
    return char != "-" and (unicodedata.category(char) == "Pd" or char == "\u2212")


_CONTROL_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "BACKSPACE",
    0x0B: "VERTICAL TAB",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
}


def describe_char(char: str) -> str:
    """`U+2014 EM DASH`: how a message names a character the learner cannot see."""
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(ord(char), "CONTROL CHARACTER")
    return f"U+{ord(char):04X} {name}"


def check_flag_spelling(word: str) -> None:
    """Flags must be plain ASCII: a look-alike dash or letter hides what really runs."""
    if word and _is_dash_like(word[0]):
        raise CommandRefused(
            f"`{_shown(word)}` starts with {describe_char(word[0])}, not a plain `-`: "
            "type flags with the ASCII hyphen"
        )
    if word.startswith("-") and not word.isascii():
        odd = next(char for char in word if not char.isascii())
        raise CommandRefused(
            f"the flag `{_shown(word)}` contains the non-ASCII character {describe_char(odd)}: "
            "flags must be plain ASCII"
        )


def _shown(word: str) -> str:
    """A word as the learner typed it, with any unknown `$(...)` output marked."""
    return word.replace(DYNAMIC, "$(...)")


def _is_int(text: str, *, signed: bool = False) -> bool:
    return re.fullmatch(r"[+-]?\d{1,12}" if signed else r"\d{1,12}", text) is not None


# --- generic flag tokens ---------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    name: str  # long name (normalised) or the short letter
    short: bool
    value: str | None  # attached (`--x=v`, `-xv`) or the next word, if the flag takes one
    spelling: str  # the word as typed, for messages

    @property
    def shown(self) -> str:
        return f"-{self.name}" if self.short else f"--{self.name}"


def _short_flags(
    word: str, following: str | None, *, takes_value: Callable[[str], bool]
) -> tuple[list[_Flag], bool]:
    """Split `-abc` the way pflag/getopt do: letters until one that takes a value.

    Returns the flags and whether the last one took the next word as its value.
    """
    flags: list[_Flag] = []
    for j in range(1, len(word)):
        letter, rest = word[j], word[j + 1 :]
        if takes_value(letter):
            if rest:
                flags.append(_Flag(letter, True, rest.removeprefix("="), word))
                return flags, False
            flags.append(_Flag(letter, True, following, word))
            return flags, following is not None
        if rest.startswith("="):
            # `-i=true`: the rest is this flag's own value, not more letters.
            flags.append(_Flag(letter, True, rest[1:], word))
            return flags, False
        flags.append(_Flag(letter, True, None, word))
    return flags, False


# --- kubectl --------------------------------------------------------------------

_KUBECTL_SUBCOMMANDS = frozenset(
    {
        "get",
        "describe",
        "apply",
        "create",
        "delete",
        "label",
        "annotate",
        "patch",
        "logs",
        "exec",
        "rollout",
        "scale",
        "explain",
        "version",
        "api-resources",
        "api-versions",
        "wait",
        "kustomize",
        "auth",
        "events",
        "run",
        "expose",
        "set",
        "replace",
        "cluster-info",
        "top",
    }
)

_KUBECTL_REFUSED_SUBCOMMANDS = {
    "config": "it reads and changes kubeconfig files, and the lab sets your credentials",
    "proxy": "it opens a proxy to the API server on this machine",
    "plugin": "plugins are programs on this machine, not part of the lab",
    "kuberc": "it changes kubectl's preference files",
    "edit": "it opens an editor; use `kubectl patch` or `kubectl apply` instead",
    "cp": "it copies files to and from this machine",
    "attach": "interactive sessions are not available here",
    "port-forward": "it opens ports on this machine",
    "debug": "debug sessions are interactive and can reach the node",
    "certificate": "approving certificates is for cluster administrators",
    "drain": "nodes are shared by every learner",
    "cordon": "nodes are shared by every learner",
    "uncordon": "nodes are shared by every learner",
    "taint": "nodes are shared by every learner",
    "completion": "shell completion is not needed in the lab",
    "alpha": "alpha commands are not part of the lab",
    "diff": "it runs an external diff program on this machine",
}

_AUTH_SUBCOMMANDS = frozenset({"can-i", "whoami"})

# Global flags that accept a value; only these (and the booleans below) may come
# before the subcommand, which is also what kubectl itself accepts there.
_GLOBAL_VALUE_FLAGS = frozenset(
    {
        "namespace",
        "request-timeout",
        "v",
        "log-flush-frequency",
        "kubeconfig",
        "server",
        "token",
        "as",
        "as-group",
        "as-uid",
        "as-user-extra",
        "context",
        "cluster",
        "user",
        "username",
        "password",
        "certificate-authority",
        "client-certificate",
        "client-key",
        "tls-server-name",
        "cache-dir",
        "proxy-url",
        "kuberc",
        "profile",
        "profile-output",
        "vmodule",
    }
)
_GLOBAL_BOOL_FLAGS = frozenset(
    {
        "match-server-version",
        "warnings-as-errors",
        "disable-compression",
        "insecure-skip-tls-verify",
        "help",
    }
)
_GLOBAL_SHORTS = {"n": "namespace", "s": "server", "v": "v", "h": "help"}

_CREDENTIALS = "the lab chooses the cluster and your credentials"
_SANDBOX_FLAGS = {
    **{
        name: _CREDENTIALS
        for name in (
            "kubeconfig",
            "server",
            "token",
            "as",
            "as-group",
            "as-uid",
            "as-user-extra",
            "context",
            "cluster",
            "user",
            "username",
            "password",
            "insecure-skip-tls-verify",
            "certificate-authority",
            "client-certificate",
            "client-key",
            "tls-server-name",
            "proxy-url",
        )
    },
    "cache-dir": "the lab manages kubectl's cache",
    "kuberc": "it reads a kubectl preferences file from this machine",
    "profile": "it writes profiling files on this machine",
    "profile-output": "it writes profiling files on this machine",
    "output-directory": "it writes files on this machine",
    "vmodule": "detailed logging prints request details, including credentials",
    "edit": "it opens an editor; use `kubectl patch` or `kubectl apply` instead",
    # kustomize's ways to run programs or read outside the lab's directory.
    "enable-helm": "it runs helm, a program on this machine",
    "helm-command": "it runs a program on this machine",
    "helm-api-versions": "helm is not available in the lab",
    "helm-kube-version": "helm is not available in the lab",
    "helm-debug": "helm is not available in the lab",
    "enable-exec": "it runs programs on this machine",
    "enable-alpha-plugins": "kustomize plugins run programs on this machine",
    "load-restrictor": "it lets kustomize read files outside the lab's directory",
    "mount": "it mounts files from this machine into kustomize functions",
    "network": "kustomize functions have no network in the lab",
    "network-name": "kustomize functions have no network in the lab",
    "as-current-user": "kustomize functions do not run in the lab",
}

# Long flags that take a value in every subcommand that has them. Used to find
# positional words and to read a value given as the next word.
_VALUE_FLAGS = _GLOBAL_VALUE_FLAGS | {
    "output",
    "selector",
    "filename",
    "kustomize",
    "container",
    "template",
    "field-selector",
    "sort-by",
    "label-columns",
    "from-file",
    "from-env-file",
    "from-literal",
    "patch-file",
    "patch",
    "type",
    "cert",
    "key",
    "image",
    "replicas",
    "port",
    "target-port",
    "for",
    "timeout",
    "since",
    "since-time",
    "tail",
    "limit-bytes",
    "chunk-size",
    "labels",
    "overrides",
    "env",
    "containers",
    "subresource",
    "raw",
    "field-manager",
    "grace-period",
    "current-replicas",
    "to-revision",
    "resource-version",
    "api-group",
    "pod-running-timeout",
}

# Short letters that take a value, and the subcommands where one is a boolean.
_VALUE_SHORTS = frozenset("nsvolfkLpcer")
_BOOL_SHORTS_IN = {"logs": frozenset("fp")}

_FILE_FLAGS = {"f": "filename", "k": "kustomize"}
# flag -> (comma-separated list?, may be `key=path`?)
_PATH_FLAGS = {
    "filename": (True, False),
    "kustomize": (False, False),
    "from-file": (True, True),
    "from-env-file": (True, False),
    "patch-file": (False, False),
    "cert": (False, False),
    "key": (False, False),
}

_MAX_VERBOSITY = 6


@dataclass(frozen=True)
class _KubectlWords:
    flags: list[_Flag]
    before_subcommand: list[_Flag]
    subcommand: str | None
    positionals: list[str]  # after the subcommand and before `--`, flag values skipped
    plain_words: list[str]  # the same, but keeping anything that might be a flag's value
    after_dashes: list[str]  # everything after `--`


def _kubectl_flag(
    word: str, following: str | None, subcommand: str | None
) -> tuple[list[_Flag], bool]:
    """The flags in one word, and whether the word's last flag took the next word."""
    if word.startswith("--"):
        name, sep, value = word[2:].partition("=")
        # kubectl normalises `_` to `-` in flag names: `--as_group` is `--as-group`.
        name = name.replace("_", "-")
        if sep:
            return [_Flag(name, False, value, word)], False
        if name in _VALUE_FLAGS:
            return [_Flag(name, False, following, word)], following is not None
        return [_Flag(name, False, None, word)], False
    bools = _BOOL_SHORTS_IN.get(subcommand or "", frozenset())
    return _short_flags(word, following, takes_value=lambda c: c in _VALUE_SHORTS - bools)


def _split_kubectl(args: list[str]) -> _KubectlWords:
    flags: list[_Flag] = []
    early: list[_Flag] = []
    subcommand: str | None = None
    positionals: list[str] = []
    plain: list[str] = []
    value_next = False
    for i, word in enumerate(args):
        if word == "--":
            return _KubectlWords(flags, early, subcommand, positionals, plain, args[i + 1 :])
        if subcommand is not None and not word.startswith("-"):
            plain.append(word)
        if word.startswith("-") and word != "-":
            # Every flag-looking word is checked, even one taken as a value: a wrong
            # guess about which flags take values must never hide a flag.
            following = args[i + 1] if i + 1 < len(args) else None
            word_flags, value_next = _kubectl_flag(word, following, subcommand)
            if subcommand is None:
                early += word_flags
            flags += word_flags
        elif value_next:
            value_next = False
        elif subcommand is None:
            subcommand = word
        else:
            positionals.append(word)
    return _KubectlWords(flags, early, subcommand, positionals, plain, [])


def _check_global_placement(flags: list[_Flag]) -> None:
    for flag in flags:
        name = _GLOBAL_SHORTS.get(flag.name) if flag.short else flag.name
        if name not in _GLOBAL_VALUE_FLAGS and name not in _GLOBAL_BOOL_FLAGS:
            raise CommandRefused(
                f"`{flag.spelling}` must come after the subcommand: "
                "kubectl accepts only global flags such as `-n` before it"
            )


def _check_kubectl(args: list[str]) -> list[str]:
    words = _split_kubectl(args)
    sub = words.subcommand
    for flag in words.flags:
        _check_kubectl_flag(flag, sub)
    _check_global_placement(words.before_subcommand)
    if sub is None and words.after_dashes:
        raise CommandRefused("`--` before the kubectl subcommand is refused")
    if sub is not None:
        _check_kubectl_subcommand(sub, words)
    return args


def _check_kubectl_subcommand(sub: str, words: _KubectlWords) -> None:
    if DYNAMIC in sub:
        raise CommandRefused("the kubectl subcommand must be typed out, not produced by `$(...)`")
    if sub in _KUBECTL_REFUSED_SUBCOMMANDS:
        raise CommandRefused(f"`kubectl {sub}` is refused: {_KUBECTL_REFUSED_SUBCOMMANDS[sub]}")
    if sub not in _KUBECTL_SUBCOMMANDS:
        raise CommandRefused(
            f"`kubectl {_shown(sub)}` is refused: `{_shown(sub)}` is not an allowed kubectl "
            f"subcommand (kubectl would look for a plugin program `kubectl-{_shown(sub)}`)"
        )
    # Nested subcommands are looked for in every plain word, values included: a wrong
    # guess about which flag takes a value must not hide one.
    if sub == "auth":
        first = words.positionals[0] if words.positionals else None
        if first not in _AUTH_SUBCOMMANDS or "reconcile" in words.plain_words:
            raise CommandRefused("only `kubectl auth can-i` and `kubectl auth whoami` are allowed")
    if sub == "apply" and "edit-last-applied" in words.plain_words:
        raise CommandRefused("`kubectl apply edit-last-applied` is refused: it opens an editor")
    if sub == "kustomize":
        for directory in words.plain_words + words.after_dashes:
            _check_local_path("kubectl kustomize", directory, kustomize=True)


def _check_kubectl_flag(flag: _Flag, sub: str | None) -> None:
    name = flag.name
    if flag.short:
        if name == "s":
            typed = "" if flag.spelling == "-s" else f" (in `{_shown(flag.spelling)}`)"
            raise CommandRefused(f"`-s` (`--server`){typed} is refused: {_CREDENTIALS}")
        if sub in {"exec", "run"} and name in "it":
            _refuse_interactive(flag)
        if name == "v":
            _check_verbosity(flag)
        elif name == "o":
            _check_output(flag, sub)
        elif name == "e" and sub == "kustomize":
            raise CommandRefused("`-e` is refused: kustomize functions do not run in the lab")
        elif name in _FILE_FLAGS and name not in _BOOL_SHORTS_IN.get(sub or "", frozenset()):
            _check_path_flag(flag, _FILE_FLAGS[name])
        return
    if name in _SANDBOX_FLAGS:
        raise CommandRefused(f"`--{name}` is refused: {_SANDBOX_FLAGS[name]}")
    if sub in {"exec", "run"} and name in {"stdin", "tty", "attach"}:
        _refuse_interactive(flag)
    if name == "v":
        _check_verbosity(flag)
    elif name == "output":
        _check_output(flag, sub)
    elif name == "env" and sub == "kustomize":
        raise CommandRefused("`--env` is refused: kustomize functions do not run in the lab")
    elif name in _PATH_FLAGS:
        _check_path_flag(flag, name)


def _refuse_interactive(flag: _Flag) -> None:
    raise CommandRefused(
        f"`{flag.spelling}` is refused: interactive sessions (`-i`, `-t`, `--stdin`, `--tty`, "
        "`--attach`) are not available here; run a single command instead, e.g. "
        "`kubectl exec POD -- whoami`"
    )


def _check_verbosity(flag: _Flag) -> None:
    value = flag.value
    if value is None:
        return  # kubectl itself reports the missing level
    if not _is_int(value):
        raise CommandRefused(
            f"`{_shown(flag.spelling)}` is refused: the verbosity must be a number"
        )
    if int(value) > _MAX_VERBOSITY:
        raise CommandRefused(
            f"verbosity `{flag.shown} {value}` is refused: levels above {_MAX_VERBOSITY} print "
            "request details, including credentials"
        )


def _check_output(flag: _Flag, sub: str | None) -> None:
    if sub == "kustomize":
        raise CommandRefused(
            f"`{flag.spelling}` is refused: `kubectl kustomize -o` writes a file; "
            "its output is shown here without it"
        )
    value = flag.value or ""
    output_format = value.partition("=")[0].lower()
    if "file" in output_format:
        raise CommandRefused(
            f"`-o {output_format}` is refused: it reads a template file from this machine; "
            "use `-o jsonpath=...` or `-o go-template=...` instead"
        )


def _check_path_flag(flag: _Flag, name: str) -> None:
    if flag.value is None:
        return  # kubectl itself reports the missing value
    many, keyed = _PATH_FLAGS[name]
    items = flag.value.split(",") if many else [flag.value]
    for item in items:
        if keyed and "=" in item:
            item = item.partition("=")[2]
        if item == "-" and name == "filename":
            continue  # stdin
        _check_local_path(flag.shown, item, kustomize=name == "kustomize")


_PATH_CHARS = re.compile(r"[A-Za-z0-9._+/-]+")
_HOST_LIKE = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/")


def _check_local_path(where: str, path: str, *, kustomize: bool = False) -> None:
    """A file the learner names must be a plain relative path inside the lab's directory."""
    shown = _shown(path)
    if DYNAMIC in path:
        raise CommandRefused(
            f"the path given to `{where}` must be typed out, not produced by `$(...)`"
        )
    if "://" in path or path.startswith(("git@", "git::", "http:", "https:", "ssh:")):
        raise CommandRefused(
            f"`{where} {shown}` is refused: URLs are not allowed, only files in the lab's directory"
        )
    if path.startswith("~"):
        raise CommandRefused(
            f"`{where} {shown}` is refused: `~` (home directory) paths are not allowed, only "
            "relative paths inside the lab's directory"
        )
    if path.startswith("/"):
        raise CommandRefused(
            f"`{where} {shown}` is refused: absolute paths are not allowed, only relative "
            "paths inside the lab's directory"
        )
    if ".." in path.split("/"):
        raise CommandRefused(f"`{where} {shown}` is refused: `..` would leave the lab's directory")
    if not _PATH_CHARS.fullmatch(path) or path.startswith("-"):
        raise CommandRefused(
            f"`{where} {shown}` is refused: file paths may use only letters, digits and `. _ - + /`"
        )
    if kustomize and ("//" in path or _HOST_LIKE.match(path)):
        raise CommandRefused(
            f"`{where} {shown}` is refused: it looks like a remote repository; only "
            "directories in the lab's directory are allowed"
        )


# --- yq -------------------------------------------------------------------------

_YQ_SUBCOMMANDS = frozenset({"eval", "e", "eval-all", "ea"})
_YQ_FORMATS = frozenset(
    {
        "auto",
        "a",
        "yaml",
        "y",
        "kyaml",
        "ky",
        "json",
        "j",
        "props",
        "p",
        "csv",
        "c",
        "tsv",
        "t",
        "xml",
        "x",
        "base64",
        "base64url",
        "uri",
        "toml",
        "hcl",
        "h",
        "shell",
        "s",
        "lua",
        "l",
        "ini",
        "i",
    }
)
_YQ_BOOL_LONGS = {
    "prettyPrint": "P",
    "unwrapScalar": "r",
    "exit-status": "e",
    "colors": "C",
    "no-colors": "M",
    "no-doc": "N",
    "tojson": "j",
    "null-input": "n",
}
_YQ_VALUE_LONGS = {"output-format": "o", "input-format": "p", "indent": "I"}
_YQ_BOOL_SHORTS = frozenset("PreCMNjn")
_YQ_VALUE_SHORTS = frozenset("opI")
_YQ_REFUSED = {
    "i": "it rewrites files in place",
    "inplace": "it rewrites files in place",
    "s": "it writes files",
    "split-exp": "it writes files",
    "split-exp-file": "it reads and writes files",
    "from-file": "it reads the expression from a file; type the expression instead",
    "expression": "give the expression as yq's argument instead",
    "f": "front matter comes from files; yq reads the pipe here",
    "front-matter": "front matter comes from files; yq reads the pipe here",
}
# Defence in depth on top of the expression check: yq's own switches.
YQ_SECURITY_FLAGS = ("--security-disable-file-ops", "--security-disable-env-ops")

# Operators that read files or the environment, or run programs. A field such as
# `.status.loadBalancer` is not a call: the name must not follow `.`, `$` or a letter.
_YQ_CALL = re.compile(
    r"(?<![\w.$])(load\w*|env|strenv|eval|system)\s*\(|(?<![\w.$])envsubst\b|\$ENV\b"
)


def _check_yq(args: list[str]) -> list[str]:
    flags: list[str] = []
    positionals: list[str] = []
    null_input = False
    i = 0
    while i < len(args):
        word = args[i]
        following = args[i + 1] if i + 1 < len(args) else None
        if word == "--":
            positionals += args[i + 1 :]
            break
        if word.startswith("-") and word != "-":
            found = _check_yq_flag(word, following)
            null_input = null_input or found.null_input
            flags.append(word)
            if found.takes_next and following is not None:
                flags.append(following)
                i += 1
        else:
            positionals.append(word)
        i += 1
    subcommand = [positionals.pop(0)] if positionals and positionals[0] in _YQ_SUBCOMMANDS else []
    inputs = [word for word in positionals if word != "-"]
    if len(inputs) > 1:
        raise CommandRefused(
            f"yq reads from the pipe only: file arguments such as `{_shown(inputs[1])}` are "
            "refused; give one expression, e.g. `... | yq '.status'`"
        )
    expression = inputs[0] if inputs else "."
    _check_yq_expression(expression)
    # `--expression=` stops yq from taking an expression that names a file as its input;
    # `-` makes the input the pipe (yq refuses any input alongside --null-input).
    stdin = [] if null_input else ["-"]
    return [*subcommand, *flags, *YQ_SECURITY_FLAGS, f"--expression={expression}", *stdin]


@dataclass(frozen=True)
class _YqFlagWord:
    takes_next: bool  # the next word is this flag's value
    null_input: bool  # it turns on --null-input


def _check_yq_flag(word: str, following: str | None) -> _YqFlagWord:
    if word.startswith("--"):
        name, sep, value = word[2:].partition("=")
        if name in _YQ_REFUSED:
            raise CommandRefused(f"yq `--{name}` is refused: {_YQ_REFUSED[name]}")
        if name in _YQ_BOOL_LONGS:
            if sep and value not in {"true", "false"}:
                raise CommandRefused(f"yq `{_shown(word)}` is refused: use true or false")
            return _YqFlagWord(False, name == "null-input" and value != "false")
        if name in _YQ_VALUE_LONGS:
            _check_yq_value(_YQ_VALUE_LONGS[name], value if sep else following, word)
            return _YqFlagWord(not sep, False)
        raise CommandRefused(_yq_not_allowed(word))
    flags, used_next = _short_flags(word, following, takes_value=lambda c: c in _YQ_VALUE_SHORTS)
    null_input = False
    for flag in flags:
        if flag.name in _YQ_REFUSED:
            raise CommandRefused(f"yq `-{flag.name}` is refused: {_YQ_REFUSED[flag.name]}")
        if flag.name in _YQ_VALUE_SHORTS:
            _check_yq_value(flag.name, flag.value, word)
        elif flag.name not in _YQ_BOOL_SHORTS:
            raise CommandRefused(_yq_not_allowed(f"-{flag.name}"))
        elif flag.value is not None and flag.value not in {"true", "false"}:
            raise CommandRefused(f"yq `{_shown(word)}` is refused: use true or false")
        elif flag.name == "n" and flag.value != "false":
            null_input = True
    return _YqFlagWord(used_next, null_input)


def _yq_not_allowed(word: str) -> str:
    return (
        f"yq flag `{_shown(word)}` is not allowed; allowed: -o/--output-format, "
        "-p/--input-format, -P, -r, -e, -C, -M, -I/--indent, -N, -j, -n"
    )


def _check_yq_value(letter: str, value: str | None, word: str) -> None:
    if value is None:
        raise CommandRefused(f"yq `{word}` needs a value")
    if letter == "I":
        if not _is_int(value):
            raise CommandRefused(f"yq `{word}` needs a number, not `{_shown(value)}`")
    elif value not in _YQ_FORMATS:
        raise CommandRefused(f"yq format `{_shown(value)}` is not one of yq's formats")


def _check_yq_expression(expression: str) -> None:
    match = _YQ_CALL.search(expression)
    if match:
        raise CommandRefused(
            f"yq `{match.group(0).rstrip('( ')}` is refused: it reads files or the "
            "environment, or runs programs; yq may only transform what comes through the pipe"
        )


# --- grep -----------------------------------------------------------------------

_GREP_BOOL_SHORTS = frozenset("ivcnEFwxoq")
_GREP_VALUE_SHORTS = frozenset("ABCme")
_GREP_BOOL_LONGS = frozenset(
    {
        "ignore-case",
        "invert-match",
        "count",
        "line-number",
        "extended-regexp",
        "fixed-strings",
        "word-regexp",
        "only-matching",
    }
)
_GREP_VALUE_LONGS = {
    "regexp": "e",
    "max-count": "m",
    "after-context": "A",
    "before-context": "B",
    "context": "C",
}
_GREP_READS_FILES = "grep reads the pipe here, not files"
_GREP_REFUSED = {
    **dict.fromkeys(("r", "R", "recursive", "dereference-recursive"), _GREP_READS_FILES),
    **dict.fromkeys(("include", "exclude", "exclude-dir", "exclude-from"), _GREP_READS_FILES),
    **dict.fromkeys(("d", "D", "directories", "devices"), _GREP_READS_FILES),
    **dict.fromkeys(("f", "file"), "it reads patterns from a file; type the pattern instead"),
}


def _check_grep(args: list[str]) -> list[str]:
    patterns: list[str] = []
    positionals: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        following = args[i + 1] if i + 1 < len(args) else None
        if word == "--":
            positionals += args[i + 1 :]
            break
        if word.startswith("-") and word != "-":
            # GNU grep reads options anywhere on the line, so every word is checked.
            i += _check_grep_flag(word, following, patterns)
        else:
            positionals.append(word)
        i += 1
    if not patterns and positionals:
        patterns.append(positionals.pop(0))
    _refuse_files("grep", positionals)
    if len(patterns) != 1:
        raise CommandRefused("grep takes exactly one pattern here")
    return args


def _check_grep_flag(word: str, following: str | None, patterns: list[str]) -> int:
    """Check one grep flag word; return 1 when it consumes the next word."""
    if word.startswith("--"):
        name, sep, value = word[2:].partition("=")
        if name in _GREP_REFUSED:
            raise CommandRefused(f"grep `--{name}` is refused: {_GREP_REFUSED[name]}")
        if name in _GREP_BOOL_LONGS and not sep:
            return 0
        if name in _GREP_VALUE_LONGS:
            _grep_value(_GREP_VALUE_LONGS[name], value if sep else following, word, patterns)
            return 0 if sep else 1
        raise CommandRefused(_grep_not_allowed(word))
    flags, used_next = _short_flags(word, following, takes_value=lambda c: c in _GREP_VALUE_SHORTS)
    for flag in flags:
        if flag.name in _GREP_REFUSED:
            raise CommandRefused(f"grep `-{flag.name}` is refused: {_GREP_REFUSED[flag.name]}")
        if flag.name in _GREP_VALUE_SHORTS:
            _grep_value(flag.name, flag.value, word, patterns)
        elif flag.name not in _GREP_BOOL_SHORTS or flag.value is not None:
            raise CommandRefused(_grep_not_allowed(word))
    return int(used_next)


def _grep_value(letter: str, value: str | None, word: str, patterns: list[str]) -> None:
    if value is None:
        raise CommandRefused(f"grep `{word}` needs a value")
    if letter == "e":
        patterns.append(value)
    elif not _is_int(value):
        raise CommandRefused(f"grep `{_shown(word)}` needs a plain number")


def _grep_not_allowed(word: str) -> str:
    return (
        f"grep flag `{_shown(word)}` is not allowed; allowed: -i -v -c -n -E -F -w -x -o -q, "
        "-A/-B/-C/-m N, -e PATTERN"
    )


# --- head, tail, wc -------------------------------------------------------------

_TAIL_FOLLOWS = "tail would wait for more input forever"
_TAIL_REFUSED = {
    **dict.fromkeys(("f", "F", "follow", "retry", "pid"), _TAIL_FOLLOWS),
    **dict.fromkeys(("s", "sleep-interval"), _TAIL_FOLLOWS),
}
_COUNT_LONGS = {"lines": "n", "bytes": "c"}


def _check_head(args: list[str]) -> list[str]:
    return _check_head_or_tail("head", args)


def _check_tail(args: list[str]) -> list[str]:
    return _check_head_or_tail("tail", args)


def _check_head_or_tail(program: str, args: list[str]) -> list[str]:
    i = 0
    while i < len(args):
        word = args[i]
        following = args[i + 1] if i + 1 < len(args) else None
        if word == "--" or not word.startswith("-") or word == "-":
            _refuse_files(program, args[i + 1 :] if word == "--" else args[i:])
            break
        i += _check_count_flag(program, word, following)
        i += 1
    return args


def _check_count_flag(program: str, word: str, following: str | None) -> int:
    """Check `-n N`, `-nN`, `-N`, `-c N`, `--lines=N`; return 1 if it used the next word."""
    if word.startswith("--"):
        name, sep, value = word[2:].partition("=")
        if program == "tail" and name in _TAIL_REFUSED:
            raise CommandRefused(f"tail `--{name}` is refused: {_TAIL_FOLLOWS}")
        if name not in _COUNT_LONGS:
            raise CommandRefused(_count_not_allowed(program, word))
        _check_count(program, word, value if sep else following)
        return 0 if sep else 1
    body = word[1:]
    if body.isdigit():
        return 0  # the old `head -5` spelling
    letter, value = body[0], body[1:]
    if program == "tail" and letter in _TAIL_REFUSED:
        raise CommandRefused(f"tail `-{letter}` is refused: {_TAIL_FOLLOWS}")
    if letter not in "nc":
        raise CommandRefused(_count_not_allowed(program, word))
    _check_count(program, word, value or following)
    return 0 if value else 1


def _check_count(program: str, word: str, value: str | None) -> None:
    if value is None or not _is_int(value, signed=True):
        shown = _shown(value) if value is not None else ""
        raise CommandRefused(f"{program} `{_shown(word)} {shown}`: N must be a plain number")


def _count_not_allowed(program: str, word: str) -> str:
    return f"{program} flag `{_shown(word)}` is not allowed; use -n N or -c N"


def _check_wc(args: list[str]) -> list[str]:
    for index, word in enumerate(args):
        if word == "--":
            _refuse_files("wc", args[index + 1 :])
            break
        if word in {"--lines", "--words", "--bytes", "--chars"}:
            continue
        if re.fullmatch(r"-[lwcm]+", word):
            continue
        if word.startswith("-") and word != "-":
            raise CommandRefused(f"wc flag `{_shown(word)}` is not allowed; use -l, -w, -c or -m")
        _refuse_files("wc", [word])
    return args


def _refuse_files(program: str, words: list[str]) -> None:
    if words:
        raise CommandRefused(
            f"{program} reads from the pipe only: file arguments such as `{_shown(words[0])}` "
            "are refused"
        )


_CHECKERS: dict[str, Callable[[list[str]], list[str]]] = {
    "kubectl": _check_kubectl,
    "yq": _check_yq,
    "grep": _check_grep,
    "head": _check_head,
    "tail": _check_tail,
    "wc": _check_wc,
}
