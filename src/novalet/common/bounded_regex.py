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
