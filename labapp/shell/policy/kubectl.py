"""kubectl: which subcommands and flags are allowed, and the local paths it is given."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from labapp.shell.policy import kubectl_tables as tables
from labapp.shell.policy.flags import Flag, Role, is_number, read_args
from labapp.shell.policy.kubectl_exec import check_exec, interactive_refused
from labapp.shell.policy.lab import ShellPolicy
from labapp.shell.policy.messages import DYNAMIC, CommandRefused, flag_refused, shown, typed_out
from labapp.shell.policy.paths import check_local_path


@dataclass(frozen=True)
class PathArg:
    """A local path given to kubectl through a flag, as kubectl reads it."""

    flag: str  # as the learner wrote it: `-k`, `--filename`
    path: str
    kustomization: bool  # a kustomize directory, not a file


def check_kubectl(args: list[str], policy: ShellPolicy) -> list[str]:
    words = _read(args)
    sub = words.subcommand
    for flag in words.flags:
        _check_flag(flag, sub, policy)
    _check_placement(words.before_subcommand, sub)
    if sub is None and words.after_dashes:
        raise CommandRefused("`--` before the kubectl subcommand is refused")
    if sub is not None:
        _check_subcommand(sub, words, policy)
    return args


def kubectl_intent(args: Sequence[str]) -> tuple[str | None, frozenset[str]]:
    """The subcommand and the names of the flags given (long names where kubectl's
    letter has one: `-n` is `namespace`; other letters stay letters, such as `-w`)."""
    words = _read(args)
    return words.subcommand, frozenset(_long_name(f, words.subcommand) for f in words.flags)


def kubectl_path_args(args: Sequence[str]) -> list[PathArg]:
    """Every local path kubectl's flags name (`-f`, `-k`, `--from-file`, ...), in order."""
    words = _read(args)
    return [path for flag in words.flags for path in _paths(flag, words.subcommand)]


@dataclass
class _KubectlWords:
    flags: list[Flag] = field(default_factory=list)
    before_subcommand: list[Flag] = field(default_factory=list)
    subcommand: str | None = None
    positionals: list[str] = field(default_factory=list)  # after the subcommand, before `--`
    # The same, but keeping anything that might be a flag's value.
    plain_words: list[str] = field(default_factory=list)
    after_dashes: list[str] = field(default_factory=list)
    dashes: bool = False  # the line has a `--`


def _read(args: Sequence[str]) -> _KubectlWords:
    words = _KubectlWords()
    for word in read_args(args, tables.KUBECTL_FLAGS):
        words.flags += word.flags
        words.dashes = words.dashes or word.role is Role.DASHES
        if word.after_dashes:
            words.after_dashes.append(word.text)
        elif words.subcommand is None:
            words.before_subcommand += word.flags
            if word.role is Role.OPERAND:
                words.subcommand = word.text
        else:
            if word.role is Role.OPERAND:
                words.positionals.append(word.text)
            if word.role in {Role.OPERAND, Role.VALUE} and word.text != "-":
                words.plain_words.append(word.text)
    return words


def _long_name(flag: Flag, sub: str | None) -> str:
    """`-n` is `--namespace`; `-f` is `--filename` except where it takes no value (`logs`)."""
    if not flag.short:
        return flag.name
    if flag.name in tables.KUBECTL_FLAGS.for_subcommand(sub).value_shorts:
        return tables.VALUE_LETTER_NAMES.get(flag.name, flag.name)
    return tables.BOOL_LETTER_NAMES.get(flag.name, flag.name)


def _check_flag(flag: Flag, sub: str | None, policy: ShellPolicy) -> None:
    name = _long_name(flag, sub)
    if name in tables.SANDBOX_FLAGS:
        reason = tables.SANDBOX_FLAGS[name]
        if not flag.short:
            raise flag_refused(flag.shown, reason)
        typed = "" if flag.spelling == flag.shown else f" (in `{shown(flag.spelling)}`)"
        raise CommandRefused(f"`{flag.shown}` (`--{name}`){typed} is refused: {reason}")
    if sub in tables.INTERACTIVE_SUBCOMMANDS and name in tables.INTERACTIVE_FLAGS:
        raise interactive_refused(flag.spelling, sub, policy)
    if name == "raw":
        _check_raw(flag)
    if name == "v":
        _check_verbosity(flag)
    elif name == "output":
        _check_output(flag, sub)
    elif name == "env" and sub == "kustomize":
        raise flag_refused(flag.shown, tables.KUSTOMIZE_FUNCTIONS)
    for path in _paths(flag, sub):
        check_local_path(path.flag, path.path, kustomize=path.kustomization)


def _check_placement(before_subcommand: list[Flag], sub: str | None) -> None:
    for flag in before_subcommand:
        name = _long_name(flag, sub)
        if name not in tables.GLOBAL_VALUE_FLAGS and name not in tables.GLOBAL_BOOL_FLAGS:
            raise CommandRefused(
                f"`{flag.spelling}` must come after the subcommand: "
                "kubectl accepts only global flags such as `-n` before it"
            )


def _check_subcommand(sub: str, words: _KubectlWords, policy: ShellPolicy) -> None:
    if DYNAMIC in sub:
        raise typed_out("the kubectl subcommand")
    if sub in tables.REFUSED_SUBCOMMANDS:
        raise CommandRefused(f"`kubectl {sub}` is refused: {tables.REFUSED_SUBCOMMANDS[sub]}")
    if sub not in tables.SUBCOMMANDS:
        raise CommandRefused(
            f"`kubectl {shown(sub)}` is refused: `{shown(sub)}` is not an allowed kubectl "
            f"subcommand (kubectl would look for a plugin program `kubectl-{shown(sub)}`)"
        )
    # Nested subcommands are looked for in every plain word, values included: a wrong
    # guess about which flag takes a value must not hide one.
    if sub == "auth":
        first = words.positionals[0] if words.positionals else None
        if first not in tables.AUTH_SUBCOMMANDS or "reconcile" in words.plain_words:
            raise CommandRefused("only `kubectl auth can-i` and `kubectl auth whoami` are allowed")
    if sub == "exec":
        check_exec(words.positionals, words.after_dashes if words.dashes else None, policy)
    if sub == "apply" and "edit-last-applied" in words.plain_words:
        raise CommandRefused("`kubectl apply edit-last-applied` is refused: it opens an editor")
    if sub == "kustomize":
        for directory in words.plain_words + words.after_dashes:
            check_local_path("kubectl kustomize", directory, kustomize=True)


def _check_raw(flag: Flag) -> None:
    """`--raw` sends any request: not to the subresources that open a session."""
    path = (flag.value or "").partition("?")[0]
    if tables.SESSION_SUBRESOURCES.search(path):
        raise CommandRefused(
            f"`--raw {shown(path)}` is refused: {tables.SESSION_SUBRESOURCE_REASON}"
        )


def _check_verbosity(flag: Flag) -> None:
    value = flag.value
    if value is None:
        return  # kubectl itself reports the missing level
    if not is_number(value):
        raise CommandRefused(f"`{shown(flag.spelling)}` is refused: the verbosity must be a number")
    if int(value) > tables.MAX_VERBOSITY:
        raise CommandRefused(
            f"verbosity `{flag.shown} {value}` is refused: levels above "
            f"{tables.MAX_VERBOSITY} print request details, including credentials"
        )


def _check_output(flag: Flag, sub: str | None) -> None:
    if sub == "kustomize":
        raise CommandRefused(
            f"`{flag.spelling}` is refused: `kubectl kustomize -o` writes a file; "
            "its output is shown here without it"
        )
    output_format = (flag.value or "").partition("=")[0].lower()
    if "file" in output_format:
        raise CommandRefused(
            f"`-o {output_format}` is refused: it reads a template file from this machine; "
            "use `-o jsonpath=...` or `-o go-template=...` instead"
        )


def _paths(flag: Flag, sub: str | None) -> Iterator[PathArg]:
    name = _long_name(flag, sub)
    kind = tables.PATH_FLAGS.get(name)
    if kind is None or flag.value is None:
        return  # not a path flag, or kubectl itself reports the missing value
    for item in flag.value.split(",") if kind.comma_list else [flag.value]:
        path = item.partition("=")[2] if kind.keyed and "=" in item else item
        if path == "-" and name == "filename":
            continue  # stdin
        yield PathArg(flag.shown, path, kustomization=name == "kustomize")
