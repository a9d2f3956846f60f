import polars as pl
import xarray as xr

from prh.analysis.probes import alignment_distance, umap_models
from prh.analysis.trends import vision_alignment
from prh.io.workflow import logged
from prh.plots.probes import plot_model_umap

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    competence = pl.read_parquet(snakemake.input.competence)
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        names, alignment, values = vision_alignment(ds.load(), competence, p.metric, p.models)
    coords = umap_models(alignment_distance(alignment), n_neighbors=p.neighbors, seed=p.seed)
    log.info("models %s\nUMAP coordinates\n%s", names, coords)
    plot_model_umap(coords, names, values, snakemake.output[0], p.metric)
