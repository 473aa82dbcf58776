"""Where the time goes: py-spy samples the service while wrk loads one case,
and the samples are ranked by package and by function."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import compare, load
from bench.tools import on_load_cpu, tool

PROFILED = ["svc-health", "svc-by-id", "svc-hit", "svc-miss", "svc-me", "svc-list", "svc-order", "svc-login"]
SAMPLE_RATE = 250
_FRAME = re.compile(r"^(?P<function>\S+) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: str

    @property
    def package(self) -> str:
        """fastapi, sqlalchemy, ..., app/orders, threading (stdlib modules by name)."""
        path = self.file.split("site-packages/", 1)[-1]
        if "/app/" in path:
            path = "app/" + path.split("/app/", 1)[1]
        # "<frozen runpy>", "<sqlalchemy generated ... wrapper ...>": the first word.
        parts = path.strip("<>").removeprefix("frozen ").split("/")
        if parts[0] == "app" and len(parts) > 1:
            return "app/" + parts[1].removesuffix(".py")
        words = parts[0].removesuffix(".py").split()
        return words[0] if words else "?"

    def short(self) -> str:
        path = self.file.split("site-packages/", 1)[-1]
        if "/app/" in path:
            path = "app/" + path.split("/app/", 1)[1]
        return f"{self.function} ({path}:{self.line})"


# Worker threads waiting for work: py-spy reports them when it cannot tell
# they are idle. Their samples are dropped (and counted).
# The log writer thread (app/platform/logging.py) blocks in QueueListener.dequeue,
# a thread-pool worker between jobs in `_worker` itself (queue.get is C code).
IDLE_LEAVES = {
    ("_worker", "concurrent"),
    ("Condition.wait", "threading"),
    ("Event.wait", "threading"),
    ("wait", "threading"),
    ("QueueListener.dequeue", "logging"),
}
# Frames every sample of the event loop's thread sits under.
OUTER = {"runpy", "click", "uvicorn", "asyncio"}


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if match is None:
        return Frame(text.strip(), "", "")
    return Frame(match["function"], match["file"] or "", match["line"] or "")


def summarise(collapsed: str, top: int = 12) -> dict[str, Any]:
    """Shares of samples: by the package of the innermost frame (self), by
    every package on the stack (inclusive), and the top functions (self)."""
    self_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    self_function: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        leaf = frames[-1]
        if (leaf.function, leaf.package) in IDLE_LEAVES:
            idle += count
            continue
        total += count
        self_package[leaf.package] += count
        self_function[leaf.short()] += count
        for package in {frame.package for frame in frames} - OUTER:
            inclusive[package] += count

    def shares(counter: collections.Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, round(100 * c / total, 1)) for name, c in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "idle_thread_samples_dropped": idle,
        "self_by_package": shares(self_package, top),
        "inclusive_by_package": shares(inclusive, top),
        "self_by_function": shares(self_function, top),
    }


def record(pid: int, seconds: float, output: Path) -> None:
    command = [
        tool("py-spy"), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    subprocess.run(on_load_cpu(command), check=True, capture_output=True)


def profile(out: Path, meta: dict[str, Any], *, seconds: float, products: int, pin: bool) -> bool:
    cfg = compare.Settings(
        rounds=0,
        duration=seconds,
        connections=64,
        products=products,
        warmup=2,
        open_loop_duration=0,
        pin_backends=pin,
    )
    folder = out / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    with compare.environment(cfg) as env:
        for key in PROFILED:
            run = env.runs[key]
            compare.measure(run, f"profile-warm-{key}", 2)  # caches, pools, prepared statements
            if run.before is not None:
                run.before(run)
            if run.fresh is not None:
                run.fresh.reserve(int(5_000 * seconds) + 1_000)
            wrk_result: list[load.Saturation] = []

            def apply_load(run: compare.Run = run, key: str = key, into: list[load.Saturation] = wrk_result) -> None:
                into.append(load.wrk(run.server.base, run.workload, f"profile-{key}", seconds + 2, run.connections))

            loader = threading.Thread(target=apply_load)
            loader.start()
            collapsed = folder / f"{key}.txt"
            threading.Event().wait(1)
            record(run.server.pid, seconds, collapsed)
            loader.join()
            if run.fresh is not None:
                run.fresh.advance(wrk_result[0].requests + 2 * run.connections)
            summary = summarise(collapsed.read_text())
            summary["req_s_while_profiled"] = round(wrk_result[0].req_s)
            summaries[run.label] = summary
            print(f"profiled {run.label}: {summary['samples']} samples", file=sys.stderr, flush=True)
    meta.update({"mode": "profile", "seconds_per_case": seconds, "sample_rate_hz": SAMPLE_RATE})
    (out / "profile.json").write_text(json.dumps({"meta": meta, "cases": summaries}, indent=2) + "\n")
    text = markdown(summaries)
    (out / "profile.md").write_text(text)
    print(text)
    return True


def markdown(summaries: dict[str, Any]) -> str:
    lines = []
    for label, s in summaries.items():
        lines.append(f"### {label} ({s['req_s_while_profiled']} req/s under py-spy, {s['samples']} samples)\n")
        lines.append("Self time by package: " + ", ".join(f"{n} {p}%" for n, p in s["self_by_package"][:8]) + "\n")
        lines.append(
            "On the stack (inclusive): " + ", ".join(f"{n} {p}%" for n, p in s["inclusive_by_package"][:10]) + "\n"
        )
        lines.append("Top functions (self):\n")
        lines.extend(f"{i}. {p}% {n}" for i, (n, p) in enumerate(s["self_by_function"][:10], start=1))
        lines.append("")
    return "\n".join(lines) + "\n"
