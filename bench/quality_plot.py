"""bench/quality.py's plots (matplotlib, the ``quality`` extra): quality against time, and style/content fronts."""
from __future__ import annotations

from pathlib import Path

from quality import NETWORKS, SCORES

LABELS = {"vgg": "VGG19, max pooling", "effnet": "EfficientNet-Lite0"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt
    return plt


def _pooling(record: dict) -> str:
    settings = record["key"]["settings"]
    return settings["options"].get(settings["backend"], {}).get("pooling", "?")


def curves(path: Path, pair: str, records: dict, reference: str) -> Path | None:
    """A 2x2 grid (network x style/content): each configuration's error against wall time, the
    reference's final errors dashed, each level's end marked."""
    if not records:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(len(NETWORKS), len(SCORES), figsize=(12, 8.5), squeeze=False)
    colours = plt.get_cmap("tab10" if len(records) <= 10 else "tab20")
    for index, (name, record) in enumerate(records.items()):
        points = [p for p in record["checkpoints"]]
        last = len(record["levels"]) - 1
        for row, network in enumerate(NETWORKS):
            for column, kind in enumerate(SCORES):
                shown = [(p["t"], p["scores"][network][kind], p["level"]) for p in points if network in p["scores"]]
                if not shown:
                    continue
                ax = axes[row][column]
                ax.plot([t for t, _, _ in shown], [v for _, v, _ in shown], "-o", markersize=3,
                        color=colours(index), label=name, linewidth=2.2 if name == reference else 1.2)
                coarse = [(t, v) for t, v, level in shown if level < last]
                ax.plot([t for t, _ in coarse], [v for _, v in coarse], "s", markersize=6, mfc="none",
                        color=colours(index))
                if name == reference:
                    ax.axhline(shown[-1][1], color=colours(index), linestyle="--", linewidth=0.8)
    for row, network in enumerate(NETWORKS):
        for column, kind in enumerate(SCORES):
            ax = axes[row][column]
            ax.set_title(f"{LABELS[network]}: {kind} error", fontsize=10)
            ax.set_xlabel("time, s (--clock: wall or CPU; keeping images excluded)")
            ax.set_ylabel(f"relative {kind} error (lower is better)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{pair}: quality against time (squares: a coarser level's end, scaled up; "
                    f"dashed: {reference}'s final)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def fronts(path: Path, pair: str, groups: list[list[dict]]) -> Path | None:
    """Per network, final content error against final style error of each group of runs that differ
    only in ratio (one line per group, each point labelled with its ratio): the trade-off a ratio buys."""
    if not groups:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(NETWORKS), figsize=(12, 5), squeeze=False)
    for column, network in enumerate(NETWORKS):
        ax = axes[0][column]
        for index, records in enumerate(groups):
            shown = [(r["checkpoints"][-1]["scores"].get(network), r["key"]["settings"]["ratio"]) for r in records]
            shown = [(s["style"], s["content"], ratio) for s, ratio in shown if s]
            if not shown:
                continue
            label = f"{_pooling(records[0])} pooling ({records[0]['config']}, ...)"
            ax.plot([s for s, _, _ in shown], [c for _, c, _ in shown], "-o", label=label)
            for style, content, ratio in shown:
                ax.annotate(f"{ratio:g}", (style, content), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_title(f"{LABELS[network]}: final errors, one point per --ratio", fontsize=10)
        ax.set_xlabel("relative style error")
        ax.set_ylabel("relative content error")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{pair}: style/content fronts (lower left is better on both)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
