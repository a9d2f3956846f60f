import polars as pl

from prh.experiments.ladder.figures import plot_training_curves
from prh.io.workflow import logged

with logged(snakemake.log[0]):
    curves = pl.concat(
        [
            pl.read_parquet(path).with_columns(run=pl.lit(run))
            for run, path in zip(snakemake.params.runs, snakemake.input.curves)
        ]
    )
    plot_training_curves(curves, snakemake.output[0])
