import json

import polars as pl

from prh.experiments.idealised.experiment import run_experiment
from prh.io.provenance import script_provenance
from prh.io.workflow import atomic_path, logged, write_table

with logged(snakemake.log[0]) as log:
    rows, facts = run_experiment(**snakemake.params.world)
    provenance = script_provenance(snakemake)
    write_table(pl.DataFrame(rows), snakemake.output.table, provenance)
    with atomic_path(snakemake.output.facts) as tmp:
        tmp.write_text(json.dumps(facts | {"provenance": provenance}, indent=1, sort_keys=True))
    log.info("%s", facts["psd"] | facts["attainable"])
