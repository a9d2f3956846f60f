import polars as pl

from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    table = pl.concat([pl.read_parquet(path) for path in snakemake.input.scores])
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
