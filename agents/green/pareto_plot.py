"""The Pareto front's picture: service cost against compute kgCO2, the front ringed."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def front_png(points: Sequence[dict[str, Any]], title: str) -> bytes:
    """Service cost against compute kgCO2 for every point; the front ringed and joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    try:
        markers = "osD^vP*Xh<>"
        policies = list(dict.fromkeys(p["policy"] for p in points))
        for k, policy in enumerate(policies):
            mine = [p for p in points if p["policy"] == policy and p["runs_ok"]]
            if not mine:
                continue
            kind = mine[0]["kind"]
            ax.scatter(
                [p["service_cost"] for p in mine],
                [p["compute_kgco2"] for p in mine],
                marker=markers[k % len(markers)],
                s=36 if kind == "baseline" else 64,
                alpha=0.75,
                label=f"{policy} ({kind})",
            )
        front = sorted(
            (p for p in points if p["pareto"]),
            key=lambda p: (p["service_cost"], p["compute_kgco2"]),
        )
        ax.scatter(
            [p["service_cost"] for p in front],
            [p["compute_kgco2"] for p in front],
            s=150,
            facecolors="none",
            edgecolors="black",
            linewidths=1.4,
            label="Pareto front (cost, kgCO2, money)",
        )
        ax.plot(
            [p["service_cost"] for p in front],
            [p["compute_kgco2"] for p in front],
            color="black",
            linewidth=0.6,
            linestyle=":",
        )
        ax.set_xlabel("service cost per day (damage + estimation error), $")
        ax.set_ylabel("compute kgCO2 per day")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
