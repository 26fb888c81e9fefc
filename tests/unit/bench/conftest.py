"""The benchmarks are scripts run from bench/, importing each other by module name:
their pure helpers are tested from there too."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
