"""PNG plots of a grasp evaluation: per-object success rate and the label histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from robot_wm.grasping.shake import ARM_TABLE_LABELS, LABELS  # noqa: E402


def plot_summary(summary: dict[str, Any], out: Path) -> list[Path]:
    """Write ``per_object_success.png`` and ``labels.png`` into `out`; returns their paths."""
    paths = []
    per = {k: v for k, v in summary["per_object"].items() if v is not None}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(per) + 2), 3.5))
    ax.bar(range(len(per)), list(per.values()), color="tab:green")
    ax.set_xticks(range(len(per)), list(per.keys()), rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("stable fraction")
    ax.set_title(f"per-object success (overall {summary['success_rate'] or 0:.2f}, {summary['trials']} trials)")
    fig.tight_layout()
    paths.append(out / "per_object_success.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ARM_TABLE_LABELS if summary.get("protocol") == "arm_table" else LABELS
    counts = [summary["labels"].get(k, 0) for k in labels]
    ax.bar(labels, counts, color=["tab:green", "tab:orange", "tab:red", "tab:gray", "tab:purple", "tab:brown",
                                  "tab:pink"][:len(labels)])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("trials")
    ax.set_title(f"shake-test labels ({summary.get('protocol', 'free_hand')})")
    fig.tight_layout()
    paths.append(out / "labels.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
