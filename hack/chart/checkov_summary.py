"""Summarises a checkov JSON report (--output json) of one rendered scenario:
the counts, each skipped check with the reason the chart gives, and every
failure. Exits 1 on any failure, or when nothing was scanned (checkov passes
silently on input it ignores)."""

from __future__ import annotations

import json
import sys
from collections import Counter


def main(report_file: str) -> None:
    with open(report_file) as handle:
        report = json.load(handle)
    summary, results = report["summary"], report["results"]
    print(f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}")
    skipped = Counter(
        (check["check_id"], check["check_result"].get("suppress_comment", "")) for check in results["skipped_checks"]
    )
    for (check_id, reason), count in sorted(skipped.items()):
        print(f"    skipped {check_id} on {count} resources: {reason}")
    for check in results["failed_checks"]:
        print(f"    FAILED {check['check_id']} {check['check_name']}: {check['resource']}")
    if summary["failed"] or not summary["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
