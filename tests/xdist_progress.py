"""Per-file progress in pytest-xdist's main process, as pytest shows it on one process:
a line for each test file with its result letters and an honest [done/total] count.
xdist alone prints only letters. The line comes once the file's last test has ended
(workers run files side by side: `make test` sends one file to a worker at a time,
--dist loadfile); a test still running past a minute is named meanwhile
(tests/conftest.py's StillRunning)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class FileProgress:
    """The plugin: counts each file's tests from the workers' collection, keeps the
    letters pytest would print, and writes a file's line when it is done."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.letters: dict[str, str] = {}
        self.collected = 0
        self.finished = 0
        self._reporting = False

    def pytest_xdist_node_collection_finished(self, node: object, ids: Sequence[str]) -> None:
        if self.collected:  # every worker collects the same tests
            return
        for nodeid in ids:
            self.total[file_of(nodeid)] = self.total.get(file_of(nodeid), 0) + 1
        self.collected = len(ids)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        self._reporting = True
        try:
            return (yield)
        finally:
            self._reporting = False

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport
                                 ) -> Generator[None, Any, Any]:
        """While the terminal reporter logs a result, it gets no letter to print (this
        plugin prints it in the file's line); elsewhere (the summary) it is unchanged."""
        result = yield
        if not self._reporting or result is None:
            return result
        category, letter, word = tuple(result)
        if isinstance(letter, str) and letter:
            path = file_of(report.nodeid)
            self.letters[path] = self.letters.get(path, "") + letter
        return category, "", ""

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        path = file_of(nodeid)
        self.done[path] = self.done.get(path, 0) + 1
        self.finished += 1
        if self.done[path] >= self.total.get(path, 0):
            for line in self.lines(path, self.letters.pop(path, ""),
                                   int(getattr(self.reporter._tw, "fullwidth", 80))):
                self.reporter.write_line(line)

    def lines(self, path: str, letters: str, width: int) -> list[str]:
        """`path letters... [done/total]`, the letters wrapped at `width`."""
        digits = len(str(self.collected))
        progress = f" [{self.finished:{digits}d}/{self.collected}]"
        rows = []
        row = f"{path} "
        for letter in letters:
            if len(row) + 1 + len(progress) > width:
                rows.append(row)
                row = ""
            row += letter
        rows.append(row + " " * max(1, width - len(row) - len(progress)) + progress)
        return rows


def register(config: pytest.Config) -> bool:
    """Use FileProgress in xdist's main process of a run that prints per-file lines
    (not -v, not -q): whether it did."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    running_xdist = config.pluginmanager.has_plugin("xdist") and \
        config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    if reporter is None or not running_xdist or config.get_verbosity() != 0:
        return False
    config.pluginmanager.register(FileProgress(reporter), "novalet-file-progress")
    return True
