import polars as pl

from prh.analysis.probes import competence, solved
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    fraction = snakemake.params.solved_fraction
    accuracy = pl.concat([pl.read_parquet(path) for path in snakemake.input.probes])
    provenance = script_provenance(snakemake)
    write_table(solved(accuracy, fraction), snakemake.output.accuracy, provenance)
    table = competence(accuracy, fraction)
    write_table(table, snakemake.output.competence, provenance)
    log.info("%s", table)
