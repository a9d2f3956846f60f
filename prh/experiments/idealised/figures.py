"""Figure of the idealised world (Section 4, App. F): learners' alignment to K_PMI and to each other."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import save


def plot_idealised_world(table, facts: dict, path: str | Path) -> None:
    """The idealised world (Section 4, App. F): contrastive learners' kernel alignment to K_PMI of Z against
    training steps (per embedding dimension), the cross-modal mutual k-NN between the X and Y learners, and the
    final alignment per dimension beside what a lossy Y can attain. Titles carry this run's numbers."""
    import seaborn as sns  # here, not at the top: it brings scipy.stats, 0.6 s of every job importing this module

    rows = table.to_dicts()
    dims = sorted({r["dim"] for r in rows})
    last = max(r["step"] for r in rows)
    colours = dict(zip(dims, sns.color_palette("viridis", len(dims))))

    def series(representation, measure, dim):
        points = sorted((r["step"], r["value"]) for r in rows
                        if (r["representation"], r["measure"], r["dim"]) == (representation, measure, dim))  # fmt: skip
        return [p[0] for p in points], [p[1] for p in points]

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for dim in dims:
        axes[0].plot(*series("X", "alignment to K_PMI", dim), marker="o", color=colours[dim], label=f"d = {dim}")
        axes[1].plot(*series("Y", "mutual k-NN with X", dim), marker="o", color=colours[dim], label=f"Y, d = {dim}")
        axes[1].plot(*series("Y merged", "mutual k-NN with X", dim), marker="x", ls="--", color=colours[dim])
    final = {name: [series(name, "alignment to K_PMI", dim)[1][-1] for dim in dims] for name in ("X", "Y", "Y merged")}
    for name, marker in zip(final, "os^"):
        axes[2].plot(dims, final[name], marker=marker, label=name)
    cap = facts["attainable"]["Y merged"]
    axes[2].axhline(cap, color="k", ls=":", label=f"attainable by merged Y: {cap:.3f}")
    for ax in axes[:2]:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("training step")
    axes[0].set(ylabel="kernel alignment to K_PMI of Z", title=f"X learners: {min(final['X']):.3f}–"
                f"{max(final['X']):.3f} at step {last}")  # fmt: skip
    k = facts["world"]["k"]
    axes[1].set(ylabel=f"mutual k-NN with X (k = {k})", title="Y (solid) and merged Y (dashed) against X")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(dims, [str(d) for d in dims])
    axes[2].set(xlabel="embedding dimension d", ylabel=f"alignment to K_PMI at step {last}",
                title="final alignment per dimension")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=7)
    psd = facts["psd"]
    world = facts["world"]
    premise = "holds" if psd["off_diagonal_nonpositive"] and psd["eq33"] and psd["eq38"] else "does not hold"
    fig.suptitle(
        f"{world['states']}-state ring world, window {world['window']}: K_PMI + C with C = {psd['C']:.3f} (eq. 36) "
        f"has smallest eigenvalue {psd['min_eigenvalue']:.3g}; Proposition F.1's premise {premise}",
        fontsize=9,
    )
    save(fig, path)
