import torch

from prh.downstream import read_task
from prh.downstream_scoring import score_downstream
from prh.provenance import script_provenance
from prh.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    table = score_downstream(p.spec, snakemake.wildcards.mc_task, read_task(snakemake.input.task), p.device)
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
