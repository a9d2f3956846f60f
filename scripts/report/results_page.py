from pathlib import Path

import polars as pl

from prh.analysis.results_page import results_page
from prh.io.provenance import script_provenance
from prh.io.workflow import atomic_path, logged

with logged(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    tables = {
        name: (pl.read_parquet(trends), pl.read_parquet(controls))
        for name, trends, controls in zip(p.datasets, i.trends, i.controls)
    }
    families = {name: pl.read_parquet(path) for name, path in zip(p.families, i.families)}
    probes = None
    if i.probes:
        accuracy, competence = (pl.read_parquet(path) for path in i.probes)
        probes = (accuracy, competence, p.pretrained, p.random)
    page = results_page(tables, p.metric, script_provenance(snakemake), families, probes)
    with atomic_path(snakemake.output[0]) as tmp:
        Path(tmp).write_text(page)
