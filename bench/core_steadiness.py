"""How steady one core's speed is, with nothing of ours running on it.

Runs a fixed unit of pure Python work in a loop, pinned to the service's
core, and counts the units done in each 10 ms window. On a quiet, steady
core every window does about the same; the report lists the windows that
did less than half the median, merged into episodes. bench/README.md uses
it to tell a slow service from a slow machine: the open-loop stalls of the
cached hit came with the service's core fully busy yet finishing half its
usual requests, and no steal time, collection or page fault in sight.

    uv run --frozen --group bench python bench/core_steadiness.py --seconds 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tools import SERVER_CPU

WINDOW_S = 0.01


def unit() -> int:
    total = 0
    for n in range(200):
        total += n * n
    return total


def windows(seconds: float) -> list[int]:
    """Units of work done in each window of WINDOW_S."""
    counts = []
    end = time.perf_counter() + seconds
    window_end = time.perf_counter() + WINDOW_S
    done = 0
    while (now := time.perf_counter()) < end:
        if now >= window_end:
            counts.append(done)
            done = 0
            window_end += WINDOW_S
            while window_end <= now:  # a window in which we never ran
                counts.append(0)
                window_end += WINDOW_S
        unit()
        done += 1
    return counts


def slow_episodes(counts: list[int], share: float = 0.5) -> list[tuple[float, float, float]]:
    """(start s, length ms, mean speed against the median) of each run of
    consecutive windows below `share` of the median."""
    median = statistics.median(counts)
    episodes = []
    start = None
    for index, count in enumerate([*counts, median]):
        if count < share * median and start is None:
            start = index
        elif count >= share * median and start is not None:
            part = counts[start:index]
            episodes.append((start * WINDOW_S, len(part) * WINDOW_S * 1000, statistics.mean(part) / median))
            start = None
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(SERVER_CPU)})
    counts = windows(args.seconds)
    median = statistics.median(counts)
    episodes = slow_episodes(counts)
    slow_windows = sum(1 for count in counts if count < 0.5 * median)
    print(f"core {SERVER_CPU}: {len(counts)} windows of {WINDOW_S * 1000:.0f} ms, median {median:.0f} units per window")
    print(
        f"windows under half the median: {slow_windows} ({slow_windows / len(counts):.2%}), in {len(episodes)} episodes"
    )
    for start, length, speed in episodes:
        print(f"  at {start:7.2f} s: {length:4.0f} ms at {speed:.0%} of the median speed")


if __name__ == "__main__":
    main()
