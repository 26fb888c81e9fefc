"""`make test` has no long silent stretches (issue 14, item 10): a test or fixture that
runs past a minute is named on the terminal, once a minute, also while several run at
once (pytest-xdist's workers)."""

from __future__ import annotations

import os
import time

from tests.conftest import StillRunning


def test_a_long_test_is_named_while_it_runs() -> None:
    read, write = os.pipe()
    watcher = StillRunning(write, after=0.3, every=0.3)
    watcher.start()
    try:
        watcher.started("tests/x.py::test_long")
        time.sleep(1.6)
        watcher.finished("tests/x.py::test_long")
        watcher.started("tests/x.py::test_short")
    finally:
        watcher.finished("tests/x.py::test_short")
        watcher.stop()  # closes `write`
    with os.fdopen(read) as pipe:
        text = pipe.read()
    lines = [line for line in text.split("\n") if line]
    assert len(lines) >= 2
    assert all("still running after" in line and "tests/x.py::test_long" in line
               for line in lines)
    assert text.startswith("\n") and "\n\n" not in text  # one break, then a line each


def test_a_short_test_is_not_named() -> None:
    watcher = StillRunning(-1, after=60.0)
    now = time.monotonic()
    watcher.started("tests/x.py::test", now)
    assert watcher.notices(now + 59) == ""
    text = watcher.notices(now + 61)
    assert text == "\n    ... still running after 61 s: tests/x.py::test\n"
    assert watcher.notices(now + 62) == ""  # the next one a minute later
    assert watcher.notices(now + 121).startswith("    ... still running after 121 s")


def test_tests_running_at_once_are_each_named() -> None:
    watcher = StillRunning(-1, after=60.0)
    now = time.monotonic()
    watcher.started("tests/a.py::test", now)
    watcher.started("tests/b.py::test", now + 30)
    assert watcher.notices(now + 61).count("still running") == 1
    watcher.wrote()  # another worker's results went on the progress line
    text = watcher.notices(now + 91)
    assert text == "\n    ... still running after 61 s: tests/b.py::test\n"
    watcher.finished("tests/a.py::test")
    watcher.finished("tests/b.py::test")
    assert watcher.notices(now + 200) == ""
