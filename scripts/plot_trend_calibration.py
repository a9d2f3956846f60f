import polars as pl

from prh.plots import plot_trend_calibration
from prh.workflow import logged

with logged(snakemake.log[0]):
    plot_trend_calibration(pl.read_parquet(snakemake.input.trends), snakemake.output[0])
