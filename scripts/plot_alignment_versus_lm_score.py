import polars as pl
import xarray as xr

from prh.plots import plot_alignment_versus_lm_score
from prh.workflow import logged

with logged(snakemake.log[0]):
    trend = pl.read_parquet(snakemake.input.trends).filter(pl.col("trend") == "fig3").to_dicts()
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        scores = pl.read_parquet(snakemake.input.scores)
        metric = snakemake.params.metric
        plot_alignment_versus_lm_score(ds.load(), scores, snakemake.output[0], metric, trend[0] if trend else None)
