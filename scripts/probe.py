from pathlib import Path

from prh.probes import probe_store
from prh.provenance import script_provenance
from prh.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    table = probe_store(
        snakemake.input.features,
        Path(snakemake.input.record).parent,
        task=snakemake.wildcards.task,
        layer=p.layer,
        Cs=p.Cs,
        max_iter=p.max_iter,
        seed=p.seed,
    )
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
