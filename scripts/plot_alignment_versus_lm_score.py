import polars as pl
import xarray as xr

from prh.plots import plot_alignment_versus_lm_score
from prh.workflow import logged

with logged(snakemake.log[0]):
    trends = pl.read_parquet(snakemake.input.trends)
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        scores = pl.read_parquet(snakemake.input.scores)
        plot_alignment_versus_lm_score(ds.load(), scores, snakemake.output[0], snakemake.params.metric, trends)
