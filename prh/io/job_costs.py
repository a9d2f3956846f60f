"""Where a run's time goes: every job's Snakemake ``benchmark:`` file (wall time, peak memory, CPU time)
collected into one table, and its summary by rule."""

from __future__ import annotations

from pathlib import Path

import polars as pl

COLUMNS = {"s": "wall_s", "max_rss": "max_rss_mb", "cpu_time": "cpu_s"}


def read_benchmarks(folder: str | Path) -> pl.DataFrame:
    """One row per ``{folder}/{rule}/.../{job}.tsv`` (or ``{folder}/{rule}.tsv``): rule, job, wall_s,
    max_rss_mb and cpu_s. A file with several repeats (``benchmark: repeat(...)``) gives its first row."""
    folder = Path(folder)
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        relative = path.relative_to(folder).with_suffix("")
        rule = relative.parts[0]
        table = pl.read_csv(path, separator="\t", null_values=["-", "NA"], infer_schema_length=0)
        values = {
            new: float(table[old][0]) if old in table.columns and table[old][0] is not None else None
            for old, new in COLUMNS.items()
        }
        rows.append({"rule": rule, "job": "/".join(relative.parts[1:]) or rule, **values})
    schema = {"rule": pl.String, "job": pl.String, "wall_s": pl.Float64, "max_rss_mb": pl.Float64, "cpu_s": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def by_rule(jobs: pl.DataFrame) -> pl.DataFrame:
    """Per rule: jobs, total and mean wall seconds, largest peak memory; most time first."""
    return (
        jobs.group_by("rule")
        .agg(
            pl.len().alias("jobs"),
            pl.col("wall_s").sum().alias("total_wall_s"),
            pl.col("wall_s").mean().alias("mean_wall_s"),
            pl.col("wall_s").max().alias("max_wall_s"),
            pl.col("max_rss_mb").max().alias("max_rss_mb"),
        )
        .sort(["total_wall_s", "rule"], descending=[True, False])
    )
