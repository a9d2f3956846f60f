import polars as pl
import xarray as xr

from prh.provenance import script_provenance
from prh.trends import run_trends
from prh.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    i, p = snakemake.input, snakemake.params
    competence = pl.read_parquet(i.competence) if "competence" in i.keys() else None
    scores = pl.read_parquet(i.scores) if "scores" in i.keys() else None
    with xr.open_dataset(i.alignment, engine="scipy") as ds:
        table = run_trends(ds.load(), competence, scores, layers=p.layers, seed=p.seed)
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table.select("trend", "metric", "score", "n", "rho", "p_value", "ci_low", "ci_high"))
