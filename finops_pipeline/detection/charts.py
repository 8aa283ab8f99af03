"""Cost vs forecast band charts, as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def cost_band_chart(panels: list[tuple[str, pd.DataFrame, pd.DataFrame]], unit: str = "day") -> bytes:
    """One panel per ``(title, history, marks)``.

    ``history`` has ``period, cost, expected_cost, lower_bound, upper_bound`` (forecast columns may
    be missing for periods without a forecast); ``marks`` has ``period, cost`` for the anomalies.
    """
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (title, history, marks) in zip(axes[:, 0], panels):
        history = history.sort_values("period")
        days = pd.to_datetime(history["period"])
        ax.fill_between(days, history["lower_bound"], history["upper_bound"], color="tab:blue", alpha=0.18,
                        label="forecast band")
        ax.plot(days, history["expected_cost"], color="tab:blue", linewidth=1, linestyle="--", label="expected")
        ax.plot(days, history["cost"], color="black", linewidth=1.3, label="actual")
        if len(marks):
            ax.scatter(pd.to_datetime(marks["period"]), marks["cost"], color="tab:red", zorder=5, s=40, label="anomaly")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel(f"USD / {unit} (usage, effective)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
