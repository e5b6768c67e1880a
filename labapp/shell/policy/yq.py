"""yq: it may only transform what comes through the pipe, read as YAML or JSON.

The argv is rebuilt: the expression goes in `--expression=`, the input is `-`, and
yq's own security switches are added, so nothing the learner types reaches a file.
Input is YAML or JSON only: kubectl prints nothing else, and yq's other parsers
(XML, properties, CSV, Lua, TOML, ...) are surface a lab never needs.
"""

from __future__ import annotations

import re

from labapp.shell.policy.flags import Flag, FlagTable, Role, is_number, names, read_args
from labapp.shell.policy.messages import (
    CommandRefused,
    files_refused,
    flag_not_allowed,
    flag_refused,
    needs_value,
    shown,
)

# Defence in depth on top of the expression check: yq's own switches.
YQ_SECURITY_FLAGS = ("--security-disable-file-ops", "--security-disable-env-ops")

_SUBCOMMANDS = names("eval e eval-all ea")
_FORMATS = names(
    """
    auto a yaml y yml kyaml ky json j props p properties csv c tsv t xml x base64
    base64url uri toml hcl h tf shell s sh lua l ini i
    """
)
# `auto` reads the pipe as YAML (it goes by a file's extension, and there is none).
_INPUT_FORMATS = names("yaml y yml json j auto a")
_BOOL_LETTERS = frozenset("PreCMNjn")
_VALUE_LETTERS = frozenset("opI")
# The short letter each allowed long flag is another spelling of.
_LONG_LETTERS = {
    "prettyPrint": "P",
    "unwrapScalar": "r",
    "exit-status": "e",
    "colors": "C",
    "no-colors": "M",
    "no-doc": "N",
    "tojson": "j",
    "null-input": "n",
    "output-format": "o",
    "input-format": "p",
    "indent": "I",
}
_IN_PLACE = "it rewrites files in place"
_SPLITS = "it writes files"
_FRONT_MATTER = "front matter comes from files; yq reads the pipe here"
_REFUSED = {
    **dict.fromkeys(("i", "inplace"), _IN_PLACE),
    **dict.fromkeys(("s", "split-exp"), _SPLITS),
    "split-exp-file": "it reads and writes files",
    "from-file": "it reads the expression from a file; type the expression instead",
    "expression": "give the expression as yq's argument instead",
    **dict.fromkeys(("f", "front-matter"), _FRONT_MATTER),
}
_ALLOWED = (
    "allowed: -o/--output-format, -p/--input-format, -P, -r, -e, -C, -M, -I/--indent, -N, -j, -n"
)
_YQ_FLAGS = FlagTable(
    value_longs=frozenset(name for name, x in _LONG_LETTERS.items() if x in _VALUE_LETTERS),
    value_shorts=_VALUE_LETTERS,
)

# Operators that read files or the environment, or run programs. A field such as
# `.status.loadBalancer` is not a call: the name must not follow `.`, `$` or a letter.
_CALL = re.compile(
    r"(?<![\w.$])(\w*load\w*|env|strenv|eval|system)\s*\(|(?<![\w.$])envsubst\b|\$ENV\b"
)
# Operators that parse a string in another input format (yq's lexer spells them
# `from_xml`, `fromxml` or `@xmld`). base64 and URI decoding parse no documents.
_DECODER = re.compile(r"(?<![\w.$])(from_?(props|xml|csv|tsv)|@(props|xml|csv|tsv)d)\b")


def check_yq(args: list[str]) -> list[str]:
    flag_words: list[str] = []  # flags and their values, passed on as typed
    operands: list[str] = []
    null_input = False
    for word in read_args(args, _YQ_FLAGS):
        if word.role is Role.OPERAND:
            operands.append(word.text)
        elif word.role is not Role.DASHES:
            flag_words.append(word.text)
        for flag in word.flags:
            null_input = _check_flag(flag) or null_input
    subcommand = [operands.pop(0)] if operands and operands[0] in _SUBCOMMANDS else []
    inputs = [word for word in operands if word != "-"]
    if len(inputs) > 1:
        raise files_refused("yq", inputs[1], "; give one expression, e.g. `... | yq '.status'`")
    expression = inputs[0] if inputs else "."
    _check_expression(expression)
    # `--expression=` stops yq from taking an expression that names a file as its input;
    # `-` makes the input the pipe (yq refuses any input alongside --null-input).
    stdin = [] if null_input else ["-"]
    return [*subcommand, *flag_words, *YQ_SECURITY_FLAGS, f"--expression={expression}", *stdin]


def _check_flag(flag: Flag) -> bool:
    """Refuse a flag outside the allowlist; True when it turns on --null-input."""
    if flag.name in _REFUSED:
        raise flag_refused(flag.shown, _REFUSED[flag.name], program="yq")
    letter = flag.name if flag.short else _LONG_LETTERS.get(flag.name, "")
    if letter in _VALUE_LETTERS:
        _check_value(letter, flag.value, flag.spelling)
        return False
    if letter not in _BOOL_LETTERS:
        raise flag_not_allowed("yq", flag.shown if flag.short else flag.spelling, _ALLOWED)
    if flag.value is not None and flag.value not in {"true", "false"}:
        raise CommandRefused(f"yq `{shown(flag.spelling)}` is refused: use true or false")
    return letter == "n" and flag.value != "false"


def _check_value(letter: str, value: str | None, word: str) -> None:
    if value is None:
        raise needs_value("yq", word)
    if letter == "I":
        if not is_number(value):
            raise CommandRefused(f"yq `{shown(word)}` needs a number, not `{shown(value)}`")
    elif value not in _FORMATS:
        raise CommandRefused(f"yq format `{shown(value)}` is not one of yq's formats")
    elif letter == "p" and value not in _INPUT_FORMATS:
        raise CommandRefused(
            f"yq input format `{shown(value)}` is refused: yq reads YAML or JSON here "
            "(`-p yaml`, `-p json`)"
        )


def _check_expression(expression: str) -> None:
    match = _CALL.search(expression)
    if match:
        raise CommandRefused(
            f"yq `{match.group(0).rstrip('( ')}` is refused: it reads files or the "
            "environment, or runs programs; yq may only transform what comes through the pipe"
        )
    decoder = _DECODER.search(expression)
    if decoder:
        raise CommandRefused(
            f"yq `{decoder.group(0)}` is refused: yq reads YAML or JSON here, "
            "and parses no other format"
        )
