import polars as pl
import xarray as xr

from prh.io.workflow import logged
from prh.plots.trends import plot_alignment_versus_lm_score

with logged(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    trends, checks = pl.read_parquet(i.trends), pl.read_parquet(i.controls)
    with xr.open_dataset(i.alignment, engine="scipy") as ds:
        plot_alignment_versus_lm_score(ds.load(), trends, snakemake.output[0], p.metric, p.families, checks, p.corpus)
