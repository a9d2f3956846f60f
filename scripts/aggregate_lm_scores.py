import polars as pl

from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    table = pl.concat([pl.read_parquet(path) for path in snakemake.input])
    table.write_parquet(snakemake.output[0], statistics=False)
    log.info("%s", table)
