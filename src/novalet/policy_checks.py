"""The check-string language of OpenStack policy files: parsed once, evaluated per request.

Grammar (what oslo.policy accepts for Nova's defaults and operators' overrides):

    expr  := term ("or" term)*
    term  := factor ("and" factor)*
    factor:= "not" factor | "(" expr ")" | check
    check := "@" (always) | "!" (never) | "rule:NAME" | "role:NAME"
           | KEY ":" VALUE   (a credential KEY equals VALUE; VALUE may be
                              "%(field)s" read from the target, or a literal,
                              optionally quoted)
           | "field:" RESOURCE ":" ATTR "=" VALUE   (Neutron's: the target's
                              ATTR equals VALUE, e.g. field:networks:shared=True)

An empty check string allows everything, as in oslo.policy.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Looks a rule up by name: its parsed check, or None when no such rule exists.
RuleLookup = Callable[[str], "Check | None"]

_SUBSTITUTION = re.compile(r"%\((\w+)\)s")


class PolicySyntaxError(ValueError):
    """A check string that can't be parsed; the message names what is wrong."""


class Check(ABC):
    @abstractmethod
    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        """True when `creds` pass this check against `target`."""

    @abstractmethod
    def __str__(self) -> str: ...


@dataclass(frozen=True)
class TrueCheck(Check):
    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        return True

    def __str__(self) -> str:
        return "@"


@dataclass(frozen=True)
class FalseCheck(Check):
    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        return False

    def __str__(self) -> str:
        return "!"


def _interpolate(value: str, target: Mapping[str, Any]) -> str | None:
    """`value` with each %(field)s taken from the target; None when a field is missing."""
    missing = False

    def field(match: re.Match[str]) -> str:
        nonlocal missing
        if match.group(1) not in target or target[match.group(1)] is None:
            missing = True
            return ""
        return str(target[match.group(1)])

    result = _SUBSTITUTION.sub(field, value)
    return None if missing else result


@dataclass(frozen=True)
class RuleCheck(Check):
    name: str

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        check = rules(self.name)
        return check is not None and check(target, creds, rules)

    def __str__(self) -> str:
        return f"rule:{self.name}"


@dataclass(frozen=True)
class RoleCheck(Check):
    role: str

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        role = _interpolate(self.role, target)
        if role is None:
            return False
        return role.lower() in {r.lower() for r in creds.get("roles", ())}

    def __str__(self) -> str:
        return f"role:{self.role}"


@dataclass(frozen=True)
class GenericCheck(Check):
    """`key:value`: the credential `key` equals the (interpolated) value. Booleans
    compare as True/False, as oslo.policy's `is_admin:True` does."""

    key: str
    value: str

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        expected = _interpolate(self.value, target)
        actual = creds.get(self.key)
        if expected is None or actual is None:
            return False
        if len(expected) >= 2 and expected[0] == expected[-1] and expected[0] in "'\"":
            expected = expected[1:-1]
        if isinstance(actual, bool):
            return expected.lower() == str(actual).lower()
        if isinstance(actual, (list, tuple, set, frozenset)):
            return expected in {str(a) for a in actual}
        return expected == str(actual)

    def __str__(self) -> str:
        return f"{self.key}:{self.value}"


@dataclass(frozen=True)
class FieldCheck(Check):
    """Neutron's `field:networks:shared=True`: the target's attribute (which may hold
    colons, as router:external) equals the literal; booleans compare as True/False."""

    resource: str
    attribute: str
    value: str

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        actual = target.get(self.attribute)
        if actual is None:
            return False
        if isinstance(actual, bool):
            return self.value.lower() == str(actual).lower()
        return self.value == str(actual)

    def __str__(self) -> str:
        return f"field:{self.resource}:{self.attribute}={self.value}"


@dataclass(frozen=True)
class NotCheck(Check):
    check: Check

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        return not self.check(target, creds, rules)

    def __str__(self) -> str:
        return f"not {self.check}"


@dataclass(frozen=True)
class AndCheck(Check):
    checks: tuple[Check, ...]

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        return all(c(target, creds, rules) for c in self.checks)

    def __str__(self) -> str:
        return "(" + " and ".join(str(c) for c in self.checks) + ")"


@dataclass(frozen=True)
class OrCheck(Check):
    checks: tuple[Check, ...]

    def __call__(self, target: Mapping[str, Any], creds: Mapping[str, Any],
                 rules: RuleLookup) -> bool:
        return any(c(target, creds, rules) for c in self.checks)

    def __str__(self) -> str:
        return "(" + " or ".join(str(c) for c in self.checks) + ")"


def _tokens(text: str) -> list[str]:
    """Split on whitespace, then peel parentheses off each word's ends (a word's
    inner parentheses, as in %(project_id)s, stay)."""
    tokens: list[str] = []
    for word in text.split():
        opening = len(word) - len(word.lstrip("("))
        tokens += ["("] * opening
        word = word[opening:]
        closing = 0
        # A trailing ")" closes a group unless it ends a %(field) substitution
        # left open, which can't happen in a valid word: count balance instead.
        while word.endswith(")") and word.count(")") > word.count("("):
            word = word[:-1]
            closing += 1
        if word:
            tokens.append(word)
        tokens += [")"] * closing
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, reason: str) -> PolicySyntaxError:
        return PolicySyntaxError(f"{reason} in check string {self.text!r}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Check:
        if not self.tokens:
            return TrueCheck()
        check = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return check

    def expr(self) -> Check:
        checks = [self.term()]
        while self.peek() == "or":
            self.take()
            checks.append(self.term())
        return checks[0] if len(checks) == 1 else OrCheck(tuple(checks))

    def term(self) -> Check:
        checks = [self.factor()]
        while self.peek() == "and":
            self.take()
            checks.append(self.factor())
        return checks[0] if len(checks) == 1 else AndCheck(tuple(checks))

    def factor(self) -> Check:
        token = self.peek()
        if token is None:
            raise self.fail("the check string ends too early")
        if token == "not":
            self.take()
            return NotCheck(self.factor())
        if token == "(":
            self.take()
            check = self.expr()
            if self.peek() != ")":
                raise self.fail("a '(' is never closed")
            self.take()
            return check
        if token in (")", "and", "or"):
            raise self.fail(f"unexpected {token!r}")
        return _check(self.take(), self)


def _check(token: str, parser: _Parser) -> Check:
    if token == "@":
        return TrueCheck()
    if token == "!":
        return FalseCheck()
    key, sep, value = token.partition(":")
    if not sep or not key or not value:
        raise parser.fail(f"{token!r} is not a check (expected kind:value, '@' or '!')")
    if key == "rule":
        return RuleCheck(value)
    if key == "role":
        return RoleCheck(value)
    if key == "field":
        resource, _, test = value.partition(":")
        attribute, equals, literal = test.rpartition("=")
        if not resource or not attribute or not equals:
            raise parser.fail(f"{token!r} is not a field check (field:RESOURCE:ATTR=VALUE)")
        return FieldCheck(resource, attribute, literal)
    return GenericCheck(key, value)


def parse(text: str) -> Check:
    """The Check a check string means; PolicySyntaxError when it means nothing."""
    return _Parser(text).parse()
