"""Reliability 1 (small): 100 submissions from 10 concurrent clients, none lost, none duplicated, every job done.

Runs benchmarks/server_load.py (real server + worker subprocesses); the full 1,000 x 20 run is the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys

from server_testkit import REPO


def test_hundred_submissions_ten_clients(tmp_path):
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "server_load.py"), "--submissions", "100", "--clients", "10",
         "--frames", "30", "--render-size", "64x112", "--job-timeout", "120", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["accepted"] == 100
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["jobs"] == {"succeeded": 100} and result["unfinished_jobs"] == 0
    assert result["client_stats"]["conflicting_answers"] == 0 and result["client_stats"]["gave_up"] == 0
    assert result["latency_ms"]["p50"] > 0
