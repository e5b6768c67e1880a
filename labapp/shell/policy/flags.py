"""One reader for every program's flags: short clusters, long names, and their values.

Each program describes its flags in a FlagTable, and `read_args` says of every word
whether it spells flags, is a flag's value, or is an operand. It refuses nothing:
each program's policy judges what it finds.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FlagTable:
    """How one program reads its flags."""

    value_longs: frozenset[str] = frozenset()
    value_shorts: frozenset[str] = frozenset()
    # Go's pflag (kubectl, yq) reads `-n=5` as `-n 5`, and `-i=true` as `-i`'s value;
    # GNU getopt (head, tail, wc) keeps `=5` as the value, and `=` as one more letter.
    equals_after_letter: bool = True
    # kubectl reads `--as_group` as `--as-group`.
    underscores_are_dashes: bool = False
    # True when the table is a guess at which flags take a value (kubectl has hundreds):
    # a value that looks like a flag, or is `--`, is then also read as what it looks
    # like, so a wrong guess never hides a flag.
    values_may_be_flags: bool = False
    # Subcommands whose flags differ; the reading switches table at the first operand.
    subcommands: Mapping[str, FlagTable] = field(default_factory=dict)

    def for_subcommand(self, subcommand: str | None) -> FlagTable:
        return self.subcommands.get(subcommand or "", self)


@dataclass(frozen=True)
class Flag:
    """One flag; a word such as `-abc` spells several."""

    name: str  # long name (normalised) or the short letter
    short: bool
    value: str | None  # attached (`--x=v`, `-xv`) or the next word, if the flag takes one
    spelling: str  # the word as typed, for messages

    @property
    def shown(self) -> str:
        return f"-{self.name}" if self.short else f"--{self.name}"


class Role(enum.Enum):
    FLAGS = "flags"  # spells one or more flags
    VALUE = "value"  # the value of the flag just before it
    OPERAND = "operand"  # anything else: a subcommand, a name, a file, an expression
    DASHES = "dashes"  # `--`: every word after it is an operand


@dataclass(frozen=True)
class Word:
    """One argument, and what the program makes of it."""

    text: str
    role: Role
    flags: tuple[Flag, ...] = ()
    after_dashes: bool = False


def read_args(args: Sequence[str], table: FlagTable) -> list[Word]:
    """Every word of `args` with its role, in order; flags may come anywhere before `--`."""
    words: list[Word] = []
    value_next = False  # the last flag takes this word as its value
    operand_seen = False
    for index, text in enumerate(args):
        if value_next and not (table.values_may_be_flags and is_flag_word(text)):
            words.append(Word(text, Role.VALUE))
            value_next = False
            continue
        if text == "--":
            words.append(Word(text, Role.DASHES))
            words += [Word(rest, Role.OPERAND, after_dashes=True) for rest in args[index + 1 :]]
            break
        if is_flag_word(text):
            following = args[index + 1] if index + 1 < len(args) else None
            flags, value_next = _flags_in(text, following, table)
            words.append(Word(text, Role.FLAGS, tuple(flags)))
        else:
            if not operand_seen:
                operand_seen = True
                table = table.for_subcommand(text)
            words.append(Word(text, Role.OPERAND))
    return words


def names(text: str) -> frozenset[str]:
    """The whitespace-separated names in `text`, so long tables read as data."""
    return frozenset(text.split())


def is_flag_word(text: str) -> bool:
    """`-x`, `--x` and `--`; a lone `-` is an operand (it names stdin)."""
    return text.startswith("-") and text != "-"


def is_number(text: str, *, signed: bool = False) -> bool:
    """A plain decimal count, short enough that no program misreads it."""
    return re.fullmatch(r"[+-]?\d{1,12}" if signed else r"\d{1,12}", text) is not None


def _flags_in(word: str, following: str | None, table: FlagTable) -> tuple[list[Flag], bool]:
    """The flags one word spells, and whether the last of them takes the next word."""
    if word.startswith("--"):
        name, sep, value = word[2:].partition("=")
        if table.underscores_are_dashes:
            name = name.replace("_", "-")
        if sep:
            return [Flag(name, False, value, word)], False
        if name in table.value_longs:
            return [Flag(name, False, following, word)], following is not None
        return [Flag(name, False, None, word)], False
    return _short_flags(word, following, table)


def _short_flags(word: str, following: str | None, table: FlagTable) -> tuple[list[Flag], bool]:
    """Split `-abc` the way pflag and getopt do: letters until one that takes a value."""
    flags: list[Flag] = []
    for at in range(1, len(word)):
        letter, rest = word[at], word[at + 1 :]
        if letter in table.value_shorts:
            if not rest:
                flags.append(Flag(letter, True, following, word))
                return flags, following is not None
            if table.equals_after_letter:
                rest = rest.removeprefix("=")
            flags.append(Flag(letter, True, rest, word))
            return flags, False
        if table.equals_after_letter and rest.startswith("="):
            # `-i=true`: the rest is this flag's own value, not more letters.
            flags.append(Flag(letter, True, rest[1:], word))
            return flags, False
        flags.append(Flag(letter, True, None, word))
    return flags, False
