"""User-supplied regular expressions, matched in linear time (RE2) with bounded memory.

Python's `re` and the databases' REGEXP backtrack: `^(a+)+$` against 29 × "a" + "!"
takes seconds and doubles with each character, and on the one event loop (SQLite
runs inline) that stalls every request of every project. RE2 has no backtracking:
a match costs time linear in the text, and compiling one costs memory up to
MAX_MEM, whatever the pattern. Features that need backtracking (back-references,
look-around) are refused as invalid patterns.
"""

from __future__ import annotations

from typing import Any

import re2

from novalet import exceptions

# What RE2 may use to compile one pattern; bigger programs are refused.
MAX_MEM = 8 << 20
# Longer patterns are refused before they reach the compiler.
MAX_PATTERN = 1024


class InvalidRegex(exceptions.Invalid):
    msg_fmt = ("Invalid input for query parameters %(key)s. Value: %(value)s. "
               "Not a valid regular expression: %(reason)s")


class Pattern:
    """A compiled pattern; search and match run in time linear in the text."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def search(self, text: str | None) -> bool:
        """True when the pattern occurs anywhere in text (None never matches)."""
        return text is not None and self._compiled.search(text) is not None

    def match(self, text: str | None) -> bool:
        """True when the pattern matches at the start of text (None never matches)."""
        return text is not None and self._compiled.match(text) is not None


def compile_pattern(pattern: str, key: str = "name") -> Pattern:
    """Compile a user's pattern with RE2; InvalidRegex (400) when RE2 cannot take it
    (bad syntax, back-references, look-around, too long or too big)."""
    if len(pattern) > MAX_PATTERN:
        raise InvalidRegex(key=key, value=pattern[:64] + "...",
                           reason=f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False
    try:
        return Pattern(re2.compile(pattern, options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "unsupported"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise InvalidRegex(key=key, value=pattern, reason=str(reason)) from None


_SPECIAL = set("\\^$.|?*+()[]{}")
_OPTIONAL = set("?*{")


def required_literal(pattern: str) -> str | None:
    """The longest piece of plain text that every string `pattern` finds must
    contain, or None; the database narrows by it (LIKE '%literal%') before RE2 runs.

    Conservative by design: a wrong answer would hide servers, a missing one only
    costs a scan. Patterns with alternation or flags ("|", "(?") give None; text
    inside groups and classes, optional characters (before ?, * or {) and escapes
    other than escaped punctuation are skipped."""
    if "|" in pattern or "(?" in pattern:
        return None
    runs: list[str] = []
    run: list[str] = []
    depth, i = 0, 0

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < len(pattern):
        char = pattern[i]
        literal: str | None = None
        if char == "\\":
            following = pattern[i + 1:i + 2]
            if not following or following.isdigit() or following in "xpPQC":
                return None  # \x41, \pL, \Q…\E, octal: not worth parsing
            if following.isalnum():  # \d, \w, \b, \A, \n …: not plain text here
                end_run()
            else:
                literal = following
            i += 2
        elif char == "[":
            end_run()
            i = _class_end(pattern, i)
        elif char == "{":
            end_run()
            close = pattern.find("}", i)
            i = len(pattern) if close < 0 else close + 1
        elif char in "?*+":
            end_run()
            i += 1
        elif char in "()":
            end_run()
            depth += 1 if char == "(" else -1
            i += 1
        elif char in _SPECIAL:  # ^ $ .
            end_run()
            i += 1
        else:
            literal = char
            i += 1
        if literal is None:
            continue
        following = pattern[i:i + 1]
        if depth > 0 or following in _OPTIONAL and following:
            end_run()  # inside a group, or may be absent: not required
        elif following == "+":
            run.append(literal)  # one at least, but what follows may not be adjacent
            end_run()
        else:
            run.append(literal)
    end_run()
    return max(runs, key=len) if runs else None


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class that opens at `start`."""
    i = start + 1
    if pattern[i:i + 1] == "^":
        i += 1
    if pattern[i:i + 1] == "]":  # a leading ] is a member
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1
