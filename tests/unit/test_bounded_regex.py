"""common/bounded_regex.required_literal: the text the database may narrow by before
RE2 runs. A wrong literal would hide servers, so every match must contain it."""

from __future__ import annotations

import itertools

import pytest

from novalet.common.bounded_regex import compile_pattern, required_literal


@pytest.mark.parametrize(("pattern", "literal"), [
    ("web", "web"), ("^web-\\d+$", "web-"), ("foo\\.bar", "foo.bar"),
    ("x[abc]yz", "yz"), ("[]a]bcd", "bcd"), ("a{2,3}bc", "bc"), ("(abc)def", "def"),
    ("ab?c", "a"), ("abc*d", "ab"), ("ab+cd", "ab"), ("2026-01", "2026-01"),
    ("^(a+)+$", None), ("a|b", None), ("(?i)web", None), ("\\Qa.b\\E", None),
    ("[x-z]{3}\\d", None), ("\\x41bc", None), ("...", None),
])
def test_required_literal(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal


def test_every_match_contains_the_required_literal() -> None:
    patterns = ["ab?c", "abc*d", "ab+cd", "a{2,3}bc", "x[abc]yz", "(ab)+cd", "a.b",
                "^ab$", "a\\+b", "ca*b", "(c)?ab", "b{0}ab", "[^a]bc", "a\\db"]
    texts = ["".join(t) for n in range(6)
             for t in itertools.product("abcdxyz+1", repeat=n)]
    for pattern in patterns:
        literal, compiled = required_literal(pattern), compile_pattern(pattern)
        for text in texts:
            if compiled.search(text):
                assert literal is None or literal in text, (pattern, literal, text)
