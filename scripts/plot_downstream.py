import polars as pl
import xarray as xr

from prh.plots import plot_downstream
from prh.workflow import logged

with logged(snakemake.log[0]):
    p, i = snakemake.params, snakemake.input
    scores = pl.concat([pl.read_parquet(f) for f in i.scores], how="diagonal_relaxed")
    with xr.open_dataset(i.alignment) as alignment:
        plot_downstream(scores, alignment.load(), pl.read_parquet(i.lm_scores), p.reference, p.metric,
                        snakemake.output[0], p.accuracy)  # fmt: skip
