from prh.experiments.downstream.tasks import build_task
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    task = snakemake.wildcards.mc_task
    table = build_task(snakemake.params.spec, f"downstream.tasks.{task}")
    write_table(table, snakemake.output[0], script_provenance(snakemake) | {"task": snakemake.params.spec})
    log.info("%d items, first: %s", len(table), table.row(0))
