"""grep, head, tail and wc: filters of what comes through the pipe, never of files."""

from __future__ import annotations

from labapp.shell.policy.flags import Flag, FlagTable, Role, is_number, read_args
from labapp.shell.policy.messages import (
    CommandRefused,
    files_refused,
    flag_not_allowed,
    flag_refused,
    needs_value,
    shown,
)

# --- grep -----------------------------------------------------------------------

_GREP_BOOL_LETTERS = frozenset("ivcnEFwxoq")
_GREP_VALUE_LETTERS = frozenset("ABCme")
# The short letter each allowed long flag is another spelling of.
_GREP_LONG_LETTERS = {
    "ignore-case": "i",
    "invert-match": "v",
    "count": "c",
    "line-number": "n",
    "extended-regexp": "E",
    "fixed-strings": "F",
    "word-regexp": "w",
    "only-matching": "o",
    "regexp": "e",
    "max-count": "m",
    "after-context": "A",
    "before-context": "B",
    "context": "C",
}
_READS_FILES = "grep reads the pipe here, not files"
_GREP_REFUSED = {
    **dict.fromkeys(("r", "R", "recursive", "dereference-recursive"), _READS_FILES),
    **dict.fromkeys(("include", "exclude", "exclude-dir", "exclude-from"), _READS_FILES),
    **dict.fromkeys(("d", "D", "directories", "devices"), _READS_FILES),
    **dict.fromkeys(("f", "file"), "it reads patterns from a file; type the pattern instead"),
}
_GREP_ALLOWED = "allowed: -i -v -c -n -E -F -w -x -o -q, -A/-B/-C/-m N, -e PATTERN"
# GNU grep would read `-m=5` as `=5` and fail on it; this reads `5`, as it always has.
_GREP_FLAGS = FlagTable(
    value_longs=frozenset(
        name for name, letter in _GREP_LONG_LETTERS.items() if letter in _GREP_VALUE_LETTERS
    ),
    value_shorts=_GREP_VALUE_LETTERS,
)


def check_grep(args: list[str]) -> list[str]:
    patterns: list[str] = []
    operands: list[str] = []
    # GNU grep reads options anywhere on the line, so every word is checked.
    for word in read_args(args, _GREP_FLAGS):
        if word.role is Role.OPERAND:
            operands.append(word.text)
        for flag in word.flags:
            _check_grep_flag(flag, patterns)
    if not patterns and operands:
        patterns.append(operands.pop(0))
    if operands:
        raise files_refused("grep", operands[0])
    if len(patterns) != 1:
        raise CommandRefused("grep takes exactly one pattern here")
    return args


def _check_grep_flag(flag: Flag, patterns: list[str]) -> None:
    """Refuse a flag outside the allowlist; collect the pattern an `-e` gives."""
    if flag.name in _GREP_REFUSED:
        raise flag_refused(flag.shown, _GREP_REFUSED[flag.name], program="grep")
    letter = flag.name if flag.short else _GREP_LONG_LETTERS.get(flag.name, "")
    if letter not in _GREP_VALUE_LETTERS:
        if letter not in _GREP_BOOL_LETTERS or flag.value is not None:
            raise flag_not_allowed("grep", flag.spelling, _GREP_ALLOWED)
    elif flag.value is None:
        raise needs_value("grep", flag.spelling)
    elif letter == "e":
        patterns.append(flag.value)
    elif not is_number(flag.value):
        raise CommandRefused(f"grep `{shown(flag.spelling)}` needs a plain number")


# --- head and tail ----------------------------------------------------------------

_COUNT_LETTERS = frozenset("nc")
_COUNT_LONG_LETTERS = {"lines": "n", "bytes": "c"}
_COUNT_FLAGS = FlagTable(
    value_longs=frozenset(_COUNT_LONG_LETTERS),
    value_shorts=_COUNT_LETTERS,
    equals_after_letter=False,
)
_TAIL_FOLLOWS = "tail would wait for more input forever"
_TAIL_REFUSED = frozenset({"f", "F", "follow", "retry", "pid", "s", "sleep-interval"})


def check_head(args: list[str]) -> list[str]:
    return _check_head_or_tail("head", args)


def check_tail(args: list[str]) -> list[str]:
    return _check_head_or_tail("tail", args)


def _check_head_or_tail(program: str, args: list[str]) -> list[str]:
    for word in read_args(args, _COUNT_FLAGS):
        if word.role is Role.OPERAND:
            raise files_refused(program, word.text)
        if word.text[1:].isdigit():
            continue  # `head -5`, the old spelling of `head -n 5`
        for flag in word.flags:
            _check_count_flag(program, flag)
    return args


def _check_count_flag(program: str, flag: Flag) -> None:
    """`-n N`, `-nN`, `-N`, `-c N`, `--lines=N`: a count, and nothing else."""
    if program == "tail" and flag.name in _TAIL_REFUSED:
        raise flag_refused(flag.shown, _TAIL_FOLLOWS, program="tail")
    letter = flag.name if flag.short else _COUNT_LONG_LETTERS.get(flag.name, "")
    if letter not in _COUNT_LETTERS:
        raise flag_not_allowed(program, flag.spelling, "use -n N or -c N")
    if flag.value is None or not is_number(flag.value, signed=True):
        value = shown(flag.value) if flag.value is not None else ""
        raise CommandRefused(
            f"{program} `{shown(flag.spelling)} {value}`: N must be a plain number"
        )


# --- wc -------------------------------------------------------------------------

_WC_LETTERS = frozenset("lwcm")
_WC_LONGS = frozenset({"lines", "words", "bytes", "chars"})
_WC_FLAGS = FlagTable(equals_after_letter=False)


def check_wc(args: list[str]) -> list[str]:
    for word in read_args(args, _WC_FLAGS):
        if word.role is Role.OPERAND:
            raise files_refused("wc", word.text)
        for flag in word.flags:
            allowed = _WC_LETTERS if flag.short else _WC_LONGS
            if flag.name not in allowed or flag.value is not None:
                raise flag_not_allowed("wc", flag.spelling, "use -l, -w, -c or -m")
    return args
