import polars as pl
import xarray as xr

from prh.analysis.trends import control_checks, run_trends
from prh.data.corpora import of_corpus
from prh.io.features import store_attrs
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    i, p, o = snakemake.input, snakemake.params, snakemake.output
    competence = pl.read_parquet(i.competence) if "competence" in i.keys() else None
    scores = of_corpus(pl.read_parquet(i.scores), p.corpus) if "scores" in i.keys() else None
    with xr.open_dataset(i.alignment, engine="scipy") as ds:
        ds = ds.load()
    parameters = {(a := store_attrs(path))["model"]: int(a.get("model_parameters", -1)) for path in i.features}
    table = run_trends(ds, competence, scores, controls=p.controls, layers=p.layers, seed=p.seed, parameters=parameters)
    checks = control_checks(ds, p.controls, p.metric, p.alpha)
    write_table(table, o.trends, script_provenance(snakemake))
    write_table(checks, o.controls, script_provenance(snakemake))
    log.info("%s", table.select("trend", "metric", "score", "n", "rho", "p_value", "ci_low", "ci_high"))
    log.info("%s", checks)
