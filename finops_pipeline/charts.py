"""Cost vs forecast band charts, as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def cost_band_chart(panels: list[tuple[str, pd.DataFrame, pd.DataFrame]]) -> bytes:
    """One panel per ``(title, history, marks)``.

    ``history`` has ``day, cost, expected_cost, lower_bound, upper_bound`` (forecast columns may be
    missing for days without a forecast); ``marks`` has ``day, cost`` for the anomalies.
    """
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (title, history, marks) in zip(axes[:, 0], panels):
        history = history.sort_values("day")
        days = pd.to_datetime(history["day"])
        ax.fill_between(days, history["lower_bound"], history["upper_bound"], color="tab:blue", alpha=0.18,
                        label="forecast band")
        ax.plot(days, history["expected_cost"], color="tab:blue", linewidth=1, linestyle="--", label="expected")
        ax.plot(days, history["cost"], color="black", linewidth=1.3, label="actual")
        if len(marks):
            ax.scatter(pd.to_datetime(marks["day"]), marks["cost"], color="tab:red", zorder=5, s=40, label="anomaly")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel("USD / day (usage, effective)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
