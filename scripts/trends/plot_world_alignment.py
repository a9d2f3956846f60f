import polars as pl

from prh.io.workflow import logged
from prh.plots.trends import plot_world_alignment

with logged(snakemake.log[0]):
    plot_world_alignment(pl.read_parquet(snakemake.input.trends), snakemake.output[0], snakemake.params.metric)
