"""End to end: `python bench/run.py --quick` starts PostgreSQL, Redis, the
service and the raw baseline, checks they answer alike, measures every case
and writes its rows and chart.

Needs wrk, vegeta (`make bench-tools`) and the bench dependency group; run it
with `make bench-test`. It takes about 70 s of both cores, so `make
test` does not collect it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.compare import CASES
from bench.tools import REPO

pytestmark = pytest.mark.bench

ROW_FIELDS = {"case", "req_s", "p50_ms", "p99_ms", "errors", "ratio", "vs"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, f"exit {completed.returncode}\n{completed.stderr[-4000:]}"
    return out


def test_one_row_per_case_with_every_field(quick_run: Path) -> None:
    rows = json.loads((quick_run / "latest.json").read_text())
    assert [row["case"] for row in rows] == [case.name for case in CASES]
    for row in rows:
        assert row.keys() >= ROW_FIELDS, row
        assert row["req_s"] > 0, row
        assert row["p50_ms"] > 0, row
        assert row["p99_ms"] >= row["p50_ms"], row


def test_every_run_is_error_free(quick_run: Path) -> None:
    rows = json.loads((quick_run / "latest.json").read_text())
    assert {row["case"]: row["errors"] for row in rows} == {row["case"]: 0 for row in rows}
    assert all(row["open_loop_errors"] in (0, None) for row in rows)


def test_each_service_case_has_a_ratio_to_its_raw_counterpart(quick_run: Path) -> None:
    rows = {row["case"]: row for row in json.loads((quick_run / "latest.json").read_text())}
    for case in CASES:
        row = rows[case.name]
        if case.vs is None:
            assert (row["ratio"], row["vs"]) == (None, "")
        else:
            assert row["ratio"] > 0, row
            assert rows[row["vs"]]["vs"] == "", row  # compared with a raw row


def test_cache_cases_measure_what_they_say(quick_run: Path) -> None:
    rows = {row["case"]: row for row in json.loads((quick_run / "latest.json").read_text())}
    hit = rows["product by id, cached hit"]["cache"]
    miss = rows["product by id, cache miss"]["cache"]
    assert hit["miss"] == 0, hit
    assert hit["local"] > 0, hit
    assert (miss["local"], miss["redis"]) == (0, 0), miss
    assert miss["miss"] > 0, miss


def test_the_baseline_was_checked_like_for_like(quick_run: Path) -> None:
    meta = json.loads((quick_run / "latest-run.json").read_text())
    assert len(meta["like_for_like"]) == 5
    assert meta["mode"] == "quick"


def test_the_chart_is_written(quick_run: Path) -> None:
    assert (quick_run / "latest.png").read_bytes()[:8] == PNG_SIGNATURE
