import polars as pl

from prh.probes import competence, solved
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    fraction = snakemake.params.solved_fraction
    accuracy = pl.concat([pl.read_parquet(path) for path in snakemake.input.probes])
    solved(accuracy, fraction).write_parquet(snakemake.output.accuracy, statistics=False)
    table = competence(accuracy, fraction)
    table.write_parquet(snakemake.output.competence, statistics=False)
    log.info("%s", table)
