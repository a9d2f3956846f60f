"""The run's job costs as a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import save


def plot_job_costs(summary, path: str | Path) -> None:
    """Where the run's time goes (``prh.io.job_costs.by_rule``): total job wall time and peak memory by rule."""
    rules = summary["rule"].to_list()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.35 * len(rules) + 1.5), sharey=True, layout="constrained")
    y = np.arange(len(rules))
    left.barh(y, summary["total_wall_s"].to_numpy() / 60, color="tab:blue")
    for i, (jobs, mean) in enumerate(zip(summary["jobs"], summary["mean_wall_s"])):
        left.text(0, i, f" {jobs} × {mean:.1f} s", va="center", fontsize=8, color="white" if i == 0 else "black")
    left.set_yticks(y, rules)
    left.invert_yaxis()
    left.set_xlabel("job minutes (sum of wall time)")
    right.barh(y, summary["max_rss_mb"].to_numpy() / 1024, color="tab:orange")
    right.set_xlabel("largest peak memory of a job (GiB)")
    jobs, minutes = int(summary["jobs"].sum()), summary["total_wall_s"].sum() / 60
    fig.suptitle(f"{jobs} jobs, {minutes:.1f} job-minutes in all")
    save(fig, path)
