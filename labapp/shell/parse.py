"""Parse one command line into a typed plan, refusing anything outside the allowlist.

bashlex gives the structure (pipes, substitutions, and everything we refuse);
each word's own text is then read again from the source here, so quoting,
globs and `$` are judged exactly as bash would see them. What each program
may be asked to do lives in `policy`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import bashlex
import bashlex.errors

from labapp.shell.policy import (
    DYNAMIC,
    NO_LAB,
    PROGRAMS,
    CommandRefused,
    ShellPolicy,
    describe_char,
    program_refused,
    typed_out,
    vetted_args,
)

__all__ = ["CommandRefused", "Pipeline", "Stage", "Substitution", "Word", "parse_command"]

# Refusals given from more than one place.
_EMPTY = "the command is empty"
_BACKTICKS = "backticks are refused: use `$(...)` instead"
_ARITHMETIC = "arithmetic `$((...))` and `$[...]` is refused"
_HERE_DOCUMENT = "here-documents (`<<`) are refused: commands get no input but a pipe"
_OTHER_SYNTAX = "this shell syntax is refused: use simple commands, `|` and `$(...)`"

MAX_LENGTH = 2000
MAX_DEPTH = 2
# Each stage and each `$(...)` is a process; no lab command needs more.
MAX_STAGES = 8
MAX_SUBSTITUTIONS = 8


@dataclass(frozen=True)
class Substitution:
    """A `$(...)` inside a word. `split`: unquoted, so its output is split into words."""

    pipeline: Pipeline
    split: bool = True


Word = tuple[str | Substitution, ...]


@dataclass(frozen=True)
class Stage:
    program: str
    words: tuple[Word, ...]  # argv[1:]

    def static_args(self) -> list[str]:
        """argv[1:] with each `$(...)` still unknown (DYNAMIC), as the parse-time check sees it."""
        return [
            "".join(DYNAMIC if isinstance(piece, Substitution) else piece for piece in word)
            for word in self.words
        ]


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]


def parse_command(line: str, policy: ShellPolicy = NO_LAB) -> Pipeline:
    """`policy`: what the sandbox's lab adds (the commands `kubectl exec` may run)."""
    _check_text(line)
    masked = _mask_quoted_text(line)
    try:
        nodes = bashlex.parse(masked)
    except Exception as exc:  # bashlex raises many types; none may reach the learner raw
        raise CommandRefused(_parse_failure(exc)) from None
    if len(nodes) != 1:
        raise CommandRefused("run one command at a time")
    return _Parser(line, policy).pipeline(nodes[0], depth=0)


# --- the raw text ---------------------------------------------------------------

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def _check_text(line: str) -> None:
    if len(line) > MAX_LENGTH:
        raise CommandRefused(
            f"the command is {len(line)} characters long; the limit is {MAX_LENGTH}"
        )
    if not line.strip():
        raise CommandRefused(_EMPTY)
    if "\n" in line or "\u2028" in line or "\u2029" in line:
        raise CommandRefused("the command has more than one line: run one command at a time")
    for char in line:
        _check_char(char)


def _check_char(char: str) -> None:
    if char == "\t" or (char.isascii() and char.isprintable()):
        return
    category = unicodedata.category(char)
    if category == "Cc":
        raise CommandRefused(
            f"the control character {describe_char(char)} is refused: it can hide what runs"
        )
    if char in _BIDI:
        raise CommandRefused(
            f"the bidirectional-text control {describe_char(char)} is refused: it makes the "
            "command display differently from what runs"
        )
    if char in _ZERO_WIDTH:
        raise CommandRefused(
            f"the zero-width character {describe_char(char)} is refused: it is invisible "
            "but changes what runs"
        )
    if category in {"Cf", "Cs", "Co", "Cn"}:
        raise CommandRefused(
            f"the invisible or unassigned character {describe_char(char)} is refused"
        )


_UNSUPPORTED = {
    "arithmetic": _ARITHMETIC,
    "time": "`time` is refused: the run's duration is shown anyway",
    "coproc": "`coproc` is refused",
    "select": "`select` loops are refused",
    "pattern": "`case` statements are refused",
}


def _parse_failure(exc: Exception) -> str:
    message = str(exc)
    if isinstance(exc, NotImplementedError):
        for key, reason in _UNSUPPORTED.items():
            if key in message:
                return reason
        return _OTHER_SYNTAX
    if "here-document" in message:
        return _HERE_DOCUMENT
    if isinstance(exc, bashlex.errors.ParsingError):
        return f"the command could not be parsed: {message}"
    return "the command could not be parsed"


# --- what bashlex gets to see ------------------------------------------------------

_MASK = "_"


def _mask_quoted_text(line: str) -> str:
    """The line with quoted text blanked out (same length, so positions still match).

    Quoted text is literal (but for `$(...)` in double quotes), so the structure
    is unchanged. bashlex misreads `$`, `{`, `~` and `<(` inside quotes, and can
    even loop forever on `a'${'`; the words themselves are read from the real line.
    The expansions bashlex handles worst are refused here, before it sees them.
    """
    out = list(line)
    contexts = ["plain"]  # "plain", "paren" (inside `$(` or `(`), or '"'
    i = 0
    while i < len(line):
        char, context = line[i], contexts[-1]
        if char == "\\":
            i += 2  # an escaped character never opens or closes anything
            continue
        if char == "`":
            raise CommandRefused(_BACKTICKS)
        if char == "$":
            _refuse_bad_dollar(line[i + 1 :], in_quotes=context == '"')
        if context == '"':
            if char == '"':
                contexts.pop()
            elif line.startswith("$(", i):
                contexts.append("paren")
                i += 2
                continue
            else:
                out[i] = _MASK
        elif char == "'":
            end = line.find("'", i + 1)
            if end == -1:
                break  # unterminated: bashlex reports it
            out[i + 1 : end] = _MASK * (end - i - 1)
            i = end
        elif char == '"':
            contexts.append('"')
        elif char == "(":
            contexts.append("paren")
        elif char == ")" and context == "paren":
            contexts.pop()
        i += 1
    return "".join(out)


def _refuse_bad_dollar(following: str, *, in_quotes: bool) -> None:
    """`$` forms with no place here; `following` is the text after the `$`."""
    if following.startswith("{"):
        name = re.match(r"\{[^}\s]{0,40}\}", following)
        raise CommandRefused(
            f"parameter expansion `${name.group(0) if name else '{...}'}` is refused: there "
            "are no variables here; put a literal `$` in single quotes"
        )
    if following.startswith(("((", "[")):
        raise CommandRefused(_ARITHMETIC)
    if following.startswith("'") and not in_quotes:
        raise CommandRefused("`$'...'` quoting is refused: use plain '...' quotes")
    if following.startswith('"') and not in_quotes:
        raise CommandRefused('`$"..."` quoting is refused: use plain "..." quotes')


# --- structure ------------------------------------------------------------------

_OPERATORS = {
    ";": "`;` is refused: run one command at a time",
    "&&": "`&&` is refused: run one command at a time",
    "||": "`||` is refused: run one command at a time",
    "&": "`&` (running in the background) is refused",
}
_COMPOUND = {
    "(": "subshells `( ... )` are refused",
    "{": "command groups `{ ...; }` are refused",
}
_CONTROL = {"if", "for", "while", "until", "case"}


class _Parser:
    def __init__(self, line: str, policy: ShellPolicy) -> None:
        self.line = line
        self.policy = policy
        self.substitutions = 0

    def pipeline(self, node: Any, *, depth: int) -> Pipeline:
        if node.kind == "command":
            return Pipeline((self.stage(node, depth=depth),))
        if node.kind != "pipeline":
            raise CommandRefused(_structure_reason(node))
        stages = []
        for part in node.parts:
            if part.kind == "pipe":
                if part.pipe != "|":
                    raise CommandRefused(f"`{part.pipe}` is refused: pipe stdout with `|` only")
            elif part.kind == "command":
                stages.append(self.stage(part, depth=depth))
            elif part.kind == "reservedword" and part.word == "!":
                raise CommandRefused("`!` (negating the exit status) is refused")
            else:
                raise CommandRefused(_structure_reason(part))
        if len(stages) > MAX_STAGES:
            raise CommandRefused(f"pipelines of more than {MAX_STAGES} commands are refused")
        return Pipeline(tuple(stages))

    def stage(self, node: Any, *, depth: int) -> Stage:
        words: list[Word] = []
        for part in node.parts:
            if part.kind == "word":
                words.append(self.word(part, depth=depth))
            elif part.kind == "assignment":
                raise CommandRefused(f"variable assignments such as `{part.word}` are refused")
            elif part.kind == "redirect":
                raise CommandRefused(_redirect_reason(part))
            else:
                raise CommandRefused(_structure_reason(part))
        if not words:
            raise CommandRefused(_EMPTY)
        stage = Stage(_program(words[0]), tuple(words[1:]))
        vetted_args(stage.program, stage.static_args(), self.policy)
        return stage

    def word(self, node: Any, *, depth: int) -> Word:
        substitutions = {}
        for part in getattr(node, "parts", []):
            if part.kind == "processsubstitution":
                raise CommandRefused("process substitution `<(...)` / `>(...)` is refused")
            if part.kind == "commandsubstitution":
                if self.line[part.pos[0]] == "`":
                    raise CommandRefused(_BACKTICKS)
                if depth + 1 > MAX_DEPTH:
                    raise CommandRefused(
                        f"`$(...)` nested deeper than {MAX_DEPTH} levels is refused"
                    )
                substitutions[part.pos[0]] = part
        start, end = node.pos
        return _WordReader(self, substitutions, depth=depth).read(start, end)


def _structure_reason(node: Any) -> str:
    if node.kind == "list":
        for part in node.parts:
            if part.kind == "operator" and part.op in _OPERATORS:
                return _OPERATORS[part.op]
    if node.kind == "function":
        return "defining functions is refused"
    if node.kind == "compound":
        for part in node.list:
            if part.kind in _CONTROL:
                return f"`{part.kind}` is refused: run one command at a time"
            if part.kind == "reservedword" and part.word in _COMPOUND:
                return _COMPOUND[part.word]
    if node.kind in _CONTROL:
        return f"`{node.kind}` is refused: run one command at a time"
    return _OTHER_SYNTAX


def _redirect_reason(node: Any) -> str:
    kind = node.type
    if kind in {"<<", "<<-"}:
        return _HERE_DOCUMENT
    if kind == "<<<":
        return "here-strings (`<<<`) are refused: commands get no input but a pipe"
    return f"redirection `{kind}` is refused: output is shown here, and files stay untouched"


def _program(word: Word) -> str:
    if len(word) != 1 or not isinstance(word[0], str):
        raise typed_out("the program name")
    name = word[0]
    if not name.isascii():
        odd = next(char for char in name if not char.isascii())
        raise CommandRefused(
            f"the program name contains the non-ASCII character {describe_char(odd)}: "
            f"only {', '.join(PROGRAMS)} can be run, spelled in plain ASCII"
        )
    if "/" in name:
        raise CommandRefused(
            f"`{name}` is refused: programs are run by name only "
            f"({', '.join(PROGRAMS)}), not by path"
        )
    if name not in PROGRAMS:
        raise program_refused(name)
    return name


# --- words ----------------------------------------------------------------------

_GLOBS = "*?["
_METACHARACTERS = " \t;&|<>()"
_DQUOTE_ESCAPES = '$`"\\'
_BRACES = re.compile(r"\{[^{}]*(,|\.\.)[^{}]*\}")
_QUOTED = "\x01"  # stands for a quoted character when looking for brace expansion


class _WordReader:
    """Reads one word's source text as bash would: quotes removed, `$(...)` kept apart."""

    def __init__(self, parser: _Parser, substitutions: dict[int, Any], *, depth: int) -> None:
        self.parser = parser
        self.line = parser.line
        self.substitutions = substitutions
        self.depth = depth
        self.pieces: list[str | Substitution] = []
        self.text: list[str] = []
        self.unquoted: list[str] = []  # the word with quoted characters masked
        self.quoted = False

    def read(self, start: int, end: int) -> Word:
        quote: str | None = None
        i = start
        while i < end:
            if i in self.substitutions and quote != "'":
                i = self._substitution(self.substitutions[i], split=quote is None)
                continue
            char = self.line[i]
            if quote == "'":
                quote = None if char == "'" else quote
                self._add(char, quoted=True, literal=char != "'")
            elif quote == '"':
                i, quote = self._in_double_quotes(i, end)
            elif char in "'\"":
                quote, self.quoted = char, True
            else:
                i = self._unquoted(i, end)
            i += 1
        if quote is not None:
            raise CommandRefused("the command could not be parsed: a quote is not closed")
        if _BRACES.search("".join(self.unquoted)):
            raise CommandRefused(
                "brace expansion `{a,b}` is refused: quote the word if you mean the braces"
            )
        return self._finish()

    def _add(self, char: str, *, quoted: bool, literal: bool = True) -> None:
        if literal:
            self.text.append(char)
        self.unquoted.append(_QUOTED if quoted else char)

    def _in_double_quotes(self, i: int, end: int) -> tuple[int, str | None]:
        char = self.line[i]
        if char == '"':
            return i, None
        if char == "\\" and i + 1 < end and self.line[i + 1] in _DQUOTE_ESCAPES:
            self._add(self.line[i + 1], quoted=True)
            return i + 1, '"'
        if char == "$":
            self._dollar(i, end, in_quotes=True)
        if char == "`":
            raise CommandRefused(_BACKTICKS)
        self._add(char, quoted=True)
        return i, '"'

    def _unquoted(self, i: int, end: int) -> int:
        char = self.line[i]
        if char == "\\":
            if i + 1 < end:
                self._add(self.line[i + 1], quoted=True)
                return i + 1
            self._add(char, quoted=False)
            return i
        if char == "$":
            self._dollar(i, end, in_quotes=False)
        elif char in _GLOBS:
            raise CommandRefused(
                f"the unquoted glob character `{char}` is refused: put the word in single "
                f"quotes, e.g. '{char}', if you mean it literally"
            )
        elif char == "~":
            raise CommandRefused("`~` (home directory) is refused: use relative paths, or quote it")
        elif char == "`":
            raise CommandRefused(_BACKTICKS)
        elif char in _METACHARACTERS:
            # bash would have ended the word here: bashlex and bash disagree, so stop.
            raise CommandRefused(f"the command could not be parsed near `{char}`")
        self._add(char, quoted=False)
        return i

    def _dollar(self, i: int, end: int, *, in_quotes: bool) -> None:
        """A `$` that does not start a `$(...)`: literal only where bash keeps it literal."""
        following = self.line[i + 1] if i + 1 < end else ""
        if following in {"", " ", "\t"} or (in_quotes and following == '"'):
            return
        _refuse_bad_dollar(self.line[i + 1 : end], in_quotes=in_quotes)
        if following == "(":
            raise CommandRefused(_ARITHMETIC)
        name = re.match(r"\{[^}]*\}?|[A-Za-z_][A-Za-z0-9_]*|.", self.line[i + 1 : end])
        shown = "$" + (name.group(0) if name else "")
        raise CommandRefused(
            f"parameter expansion `{shown}` is refused: there are no variables here; "
            "put a literal `$` in single quotes"
        )

    def _substitution(self, node: Any, *, split: bool) -> int:
        self.parser.substitutions += 1
        if self.parser.substitutions > MAX_SUBSTITUTIONS:
            raise CommandRefused(f"more than {MAX_SUBSTITUTIONS} `$(...)` are refused")
        self._flush()
        pipeline = self.parser.pipeline(node.command, depth=self.depth + 1)
        self.pieces.append(Substitution(pipeline, split=split))
        self.unquoted.append(_QUOTED)
        end: int = node.pos[1]  # bashlex's nodes are untyped
        return end

    def _flush(self) -> None:
        if self.text:
            self.pieces.append("".join(self.text))
            self.text = []

    def _finish(self) -> Word:
        self._flush()
        if not self.pieces and self.quoted:
            return ("",)  # `""` is one empty argument
        return tuple(self.pieces)
