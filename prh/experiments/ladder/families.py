"""The Section 3 hypotheses as controlled experiments: per level of a family's varied factor (width, task set
or training step), the alignment among its models (across seeds), to the world Z and to the other modality.

Every value is a mean over model pairs of the best-over-layers score of the run's aggregate; its interval is
the mean of the pairs' half-sample interval ends (a pair's uncertainty, not the spread between pairs).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

FACTOR_WORDS = {"width": "width", "task_set": "task set", "step": "training step"}


def level_of(member: dict, factors: list[str]):
    return tuple(member[f] for f in factors)


def family_table(ds, members: list[dict], factors: list[str], metric: str):
    """One row per (level, measure): measure is ``within`` (pairs of the level's models), ``world`` (each model
    against Z) or ``other modality`` (each model against every model of the other modality); with the mean,
    the interval and the number of pairs."""
    import polars as pl

    names = set(ds["model_x"].values)
    members = [m for m in members if m["name"] in names]
    modality = {m: str(v) for m, v in zip(ds["model_x"].values, ds["modality_x"].values)}
    own = modality[members[0]["name"]] if members else "vision"
    other = [m for m in names if modality[m] in ("vision", "language") and modality[m] != own]
    world = [m for m in names if modality[m] == "world"]
    sub = ds.sel(metric=metric)
    rows = []
    levels = sorted({level_of(m, factors) for m in members}, key=lambda v: tuple((x is None, x) for x in v))
    for level in levels:
        at = [m["name"] for m in members if level_of(m, factors) == level]
        pairs = {
            "within": list(combinations(at, 2)),
            "world": [(a, w) for a in at for w in world],
            "other modality": [(a, o) for a in at for o in sorted(other)],
        }
        for measure, chosen in pairs.items():
            values = [
                [float(sub[v].sel(model_x=a, model_y=b)) for v in ("best", "ci_low", "ci_high")] for a, b in chosen
            ]
            mean, low, high = np.mean(values, axis=0) if values else (np.nan, np.nan, np.nan)
            rows.append(
                {
                    "level": " / ".join(str(v) for v in level),
                    "measure": measure,
                    "mean": float(mean),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "pairs": len(chosen),
                    "models": at,
                }  # fmt: skip
            )
    return pl.DataFrame(rows, schema_overrides={"models": pl.List(pl.String)})
