"""`make test` has no long silent stretches (issue 14, item 10): a test or fixture that
runs past a minute is named on the terminal, once a minute."""

from __future__ import annotations

import os
import time

from tests.conftest import StillRunning


def test_a_long_test_is_named_while_it_runs() -> None:
    read, write = os.pipe()
    watcher = StillRunning(write, after=0.3, every=0.3)
    watcher.start()
    try:
        watcher.current = ("tests/x.py::test_long", time.monotonic())
        time.sleep(1.6)
        watcher.current = ("tests/x.py::test_short", time.monotonic())
    finally:
        watcher.current = None
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
    watcher.current = ("tests/x.py::test", time.monotonic())
    assert watcher.notice(time.monotonic(), first=True) is None
    line = watcher.notice(time.monotonic() + 61, first=True)
    assert line is not None and line.startswith("\n    ... still running after 61 s")
