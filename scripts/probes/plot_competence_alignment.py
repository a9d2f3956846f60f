import polars as pl
import xarray as xr

from prh.analysis.probes import binned_alignment
from prh.analysis.trends import vision_alignment
from prh.io.workflow import logged
from prh.plots.probes import plot_competence_alignment

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    competence = pl.read_parquet(snakemake.input.competence)
    binned = {}
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        ds = ds.load()
        for score in ("raw", "calibrated") if ds.attrs["permutations"] else ("raw",):
            names, alignment, values = vision_alignment(ds, competence, p.metric, p.models, p.layers, score)
            binned[score] = binned_alignment(alignment, values, p.bins)
            log.info("%s scores: models %s, competence %s\n%s", score, names, values, binned[score])
    trends = pl.read_parquet(snakemake.input.trends)
    n_tasks = int(competence["tasks"].max())
    plot_competence_alignment(binned, snakemake.output[0], p.metric, n_tasks, trends, p.layers, competence)
