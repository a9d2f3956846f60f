from pathlib import Path

from prh.probes import probe_store
from prh.workflow import logged

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
    table.write_parquet(snakemake.output[0], statistics=False)
    log.info("%s", table)
