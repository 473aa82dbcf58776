"""Results on disk: latest.json (one row per case), latest.md (the table the
README quotes), latest.png (the ratios against their goals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _rate(row: dict[str, Any]) -> str:
    """The open-loop rate sent; "x of y" when it fell short of the 70% asked for."""
    sent, wanted = row.get("open_loop_rate"), row.get("open_loop_target_rate")
    if sent is None:
        return ""
    if wanted and sent < 0.95 * wanted:
        return f"{sent:.0f} of {wanted:.0f}"
    return f"{sent:.0f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| case | req/s | p50 ms | p99 ms | errors | ratio | goal | at 70%: req/s | p50 ms | p99 ms | RSS MiB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for row in rows:
        cells = [
            row["case"],
            row["req_s"],
            row["p50_ms"],
            row["p99_ms"],
            row["errors"],
            row["ratio"],
            f">= {row['goal']}" if row["goal"] is not None else "",
            _rate(row),
            row["open_loop_p50_ms"],
            row["open_loop_p99_ms"],
            row["rss_mib"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return head + "\n".join(lines) + "\n"


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    compared = [row for row in rows if row["ratio"] is not None]
    names = [row["case"] for row in compared][::-1]
    ratios = [row["ratio"] for row in compared][::-1]
    goals = [row["goal"] for row in compared][::-1]
    colours = [
        "#9e9e9e" if goal is None else ("#2e7d32" if ratio >= goal else "#c62828")
        for ratio, goal in zip(ratios, goals, strict=True)
    ]
    figure, axes = plt.subplots(figsize=(9, 0.55 * len(names) + 1.6))
    bars = axes.barh(names, ratios, color=colours)
    for y, goal in enumerate(goals):
        if goal is not None:
            axes.plot([goal, goal], [y - 0.4, y + 0.4], color="black", linewidth=2)
    for bar, ratio in zip(bars, ratios, strict=True):
        axes.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{ratio:.2f}x", va="center")
    axes.axvline(1.0, color="#616161", linestyle=":", linewidth=1)
    axes.set_xlim(0, max(1.15, max(ratios, default=1.0) + 0.15))
    axes.set_xlabel("req/s relative to the raw Starlette + asyncpg app doing the same work (median of rounds)")
    axes.set_title(title, fontsize=10)
    axes.plot([], [], color="black", linewidth=2, label="goal")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(out: Path, stem: str, rows: list[dict[str, Any]], meta: dict[str, Any], title: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}-run.json", out / f"{stem}.md", out / f"{stem}.png"]
    paths[0].write_text(json.dumps(rows, indent=2) + "\n")
    paths[1].write_text(json.dumps(meta, indent=2) + "\n")
    paths[2].write_text(markdown(rows))
    chart(rows, paths[3], title)
    return paths
