"""One run's results against the lists kept here: the tests a profile must pass
(passing-PROFILE.txt, which only grows) and Nova 34's 264 (the target)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOVA_PASSED = HERE / "nova34-tempest-compute-passed.txt"


def passing_list(profile: str) -> Path:
    return HERE / f"passing-{profile}.txt"


def read_list(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def parse_csv(text: str) -> dict[str, str]:
    """subunit2csv's rows as test id -> status (success, fail, skip, ...). A class
    whose setup failed shows up as one `setUpClass (tempest...Class)` row."""
    rows = csv.DictReader(io.StringIO(text))
    return {row["test"]: row["status"] for row in rows if row.get("test")}


_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \((\S+)\)$")


def expand(statuses: dict[str, str], listed: list[str]) -> dict[str, str]:
    """Per-test results: a class skipped or failed in its setUpClass reports one row
    for the class; give each of its tests (from --list-tests) that status."""
    out = {t: s for t, s in statuses.items() if not _FIXTURE.match(t)}
    for test, status in statuses.items():
        match = _FIXTURE.match(test)
        if match and match.group(1) == "setUpClass":
            for name in listed:
                if name.startswith(match.group(2) + ".") and name not in out:
                    out[name] = status
    return out


_RESULT_LINE = re.compile(r"^\{\d+\} (.+?)(?: \[[\d.]+s\])? \.\.\. (\w+)")
_REQUEST = re.compile(r"Request \([^)]*\): (\d{3}) (\w+) https?://[^/\s]+(\S*)")
_UUID = re.compile(r"req-[0-9a-f-]{36}|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def failure_details(output: str) -> dict[str, list[str]]:
    """From stestr's output: each failed test's (or class fixture's) error lines and
    the requests answered 4xx/5xx during it."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        result = _RESULT_LINE.match(line)
        if result:
            current = None
            if result.group(2) == "FAILED":
                current = found.setdefault(result.group(1), [])
            continue
        if current is not None:
            current.append(line)
    return {test: _digest(lines) for test, lines in found.items()}


def add_fixture_requests(details: dict[str, list[str]], log: str) -> None:
    """A failed setUpClass has no captured log: take its refused requests from
    tempest.log, where Tempest names them "Request (Class:setUpClass)"."""
    for test, lines in details.items():
        match = _FIXTURE.match(test)
        if not match or any(ln.startswith("-> ") for ln in lines):
            continue
        tag = f"Request ({match.group(2).rsplit('.', 1)[1]}:{match.group(1)})"
        requests = [f"{m.group(1)} {m.group(2)} {m.group(3)}" for m in map(_REQUEST.search, (
            ln for ln in log.splitlines() if tag in ln)) if m and int(m.group(1)) >= 400]
        lines += [f"-> {r}" for r in dict.fromkeys(requests)]


_ERROR = re.compile(r"^[A-Za-z_][\w.]*: ")
# Tempest polls a deleted server until it 404s: that is cleanup, not a cause.
_CLEANUP = re.compile(r"^404 GET /compute/v2\.1/servers/[0-9a-f-]+$")


def _digest(lines: list[str]) -> list[str]:
    text = [ln.strip() for ln in lines]
    end = next((i for i, ln in enumerate(text) if ln.startswith("Captured pythonlogging")),
               len(text))
    frames = [i for i, ln in enumerate(text[:end]) if ln.startswith('File "')]
    tail = text[frames[-1] + 1 if frames else 0:end]
    first = next((i for i, ln in enumerate(tail) if _ERROR.match(ln)), None)
    error = [] if first is None else [ln for ln in tail[first:first + 2]
                                      if ln == tail[first] or ln.startswith("Details:")]
    requests = [f"{m.group(1)} {m.group(2)} {m.group(3)}" for m in map(_REQUEST.search, text)
                if m and int(m.group(1)) >= 400]
    return ([ln[:300] for ln in error]
            + [f"-> {r}" for r in dict.fromkeys(requests) if not _CLEANUP.match(r)])


_MESSAGE = re.compile(r"'message': ['\"](.*?)['\"][,}]")


def cause(details: list[str]) -> str:
    """A grouping key: the first refused request (ids and query elided) with the
    error's message, else the error itself."""
    message = next((m.group(1) for m in map(_MESSAGE.search, details) if m), "")
    for line in details:
        if line.startswith("-> "):
            request = _UUID.sub("{id}", line[3:].split("?")[0])
            return f"{request}: {message}" if message else request
    said = [_UUID.sub("{id}", d) for d in details[:2] if not d.startswith("-> ")]
    return " | ".join(d[:110] for d in said) or "(no details)"


def grouped(details: dict[str, list[str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for test, lines in sorted(details.items()):
        groups[cause(lines)].append(test)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


@dataclass
class Verdict:
    statuses: dict[str, str]
    required: set[str]
    nova: set[str]
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.counts = Counter(self.statuses.values())

    @property
    def passed(self) -> set[str]:
        return {t for t, s in self.statuses.items() if s in ("success", "xfail")}

    @property
    def regressions(self) -> list[str]:
        """Tests on the profile's list that did not pass, with what they did."""
        return sorted(self.required - self.passed)

    @property
    def newly_passing(self) -> list[str]:
        return sorted(self.passed - self.required)

    @property
    def nova_gap(self) -> list[str]:
        return sorted(self.nova - self.passed)

    def summary(self) -> list[str]:
        c = self.counts
        failed = c["fail"] + c["failure"] + c["uxsuccess"]
        return [f"{c['success'] + c['xfail']} passed, {failed} failed, {c['skip']} skipped "
                f"({len(self.statuses)} results)",
                f"Nova 34's list: {len(self.nova & self.passed)} of {len(self.nova)} pass "
                f"({len(self.nova_gap)} to go)",
                f"this profile's list: {len(self.required) - len(self.regressions)} of "
                f"{len(self.required)} pass; {len(self.newly_passing)} newly passing"]

    def status_of(self, test: str) -> str:
        return self.statuses.get(test, "not run")


def grow(path: Path, verdict: Verdict, header: str) -> int:
    """Add the newly passing tests to the list (never remove one); how many."""
    new = verdict.newly_passing
    if new:
        tests = sorted(read_list(path) | set(new))
        path.write_text(header + "".join(f"{t}\n" for t in tests))
    return len(new)
