import polars as pl

from prh.plots import plot_world_alignment
from prh.workflow import logged

with logged(snakemake.log[0]):
    plot_world_alignment(pl.read_parquet(snakemake.input.trends), snakemake.output[0], snakemake.params.metric)
