import polars as pl

from prh.io.workflow import logged
from prh.plots.trends import plot_trend_calibration

with logged(snakemake.log[0]):
    plot_trend_calibration(pl.read_parquet(snakemake.input.trends), snakemake.output[0])
