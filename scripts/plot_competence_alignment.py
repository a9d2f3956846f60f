import polars as pl
import xarray as xr

from prh.plots import plot_competence_alignment, vision_alignment
from prh.probes import binned_alignment
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    competence = pl.read_parquet(snakemake.input.competence)
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        names, alignment, values = vision_alignment(ds.load(), competence, p.metric, p.models, p.layers)
    binned = binned_alignment(alignment, values, p.bins)
    trend = pl.read_parquet(snakemake.input.trends).filter(pl.col("trend") == "fig2").to_dicts()
    log.info("models %s, competence %s\n%s", names, values, binned)
    n_tasks = int(competence["tasks"].max())
    plot_competence_alignment(binned, snakemake.output[0], p.metric, n_tasks, trend[0] if trend else None, p.layers)
