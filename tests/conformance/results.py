"""One run's results against the lists kept here: the tests a profile must pass
(passing-PROFILE.txt, which only grows) and Nova 34's 264 (the target)."""

from __future__ import annotations

import csv
import io
from collections import Counter
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
        failed = c["fail"] + c["uxsuccess"]
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
