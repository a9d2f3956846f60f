import torch

from prh.experiments.downstream.scoring import score_downstream
from prh.experiments.downstream.tasks import read_task
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    table = score_downstream(p.spec, snakemake.wildcards.mc_task, read_task(snakemake.input.task), p.device)
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
