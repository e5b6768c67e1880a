"""Flags spelled so that what the learner sees is what runs."""

from __future__ import annotations

import unicodedata

from labapp.shell.policy.messages import CommandRefused, shown

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
            f"`{shown(word)}` starts with {describe_char(word[0])}, not a plain `-`: "
            "type flags with the ASCII hyphen"
        )
    if word.startswith("-") and not word.isascii():
        odd = next(char for char in word if not char.isascii())
        raise CommandRefused(
            f"the flag `{shown(word)}` contains the non-ASCII character {describe_char(odd)}: "
            "flags must be plain ASCII"
        )


def _is_dash_like(char: str) -> bool:
    return char != "-" and (unicodedata.category(char) == "Pd" or char == "\u2212")
