import polars as pl
import xarray as xr

from prh.data.corpora import of_corpus
from prh.experiments.downstream.figures import plot_downstream
from prh.io.workflow import logged

with logged(snakemake.log[0]):
    p, i = snakemake.params, snakemake.input
    scores = pl.concat([pl.read_parquet(f) for f in i.scores], how="diagonal_relaxed")
    lm_scores = of_corpus(pl.read_parquet(i.lm_scores), p.corpus)
    with xr.open_dataset(i.alignment) as alignment:
        plot_downstream(scores, alignment.load(), lm_scores, p.reference, p.metric, snakemake.output[0], p.accuracy)
