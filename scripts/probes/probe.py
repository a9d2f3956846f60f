from pathlib import Path

from prh.analysis.probes import probe_model
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    table = probe_model(
        snakemake.input.features,
        [Path(record).parent for record in snakemake.input.records],
        **dict(p.items()),
    )
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
