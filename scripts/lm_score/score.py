from pathlib import Path

import torch

from prh.analysis.lm_score import score_model
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    corpora = {name: Path(snakemake.input[f"corpus_{name}"]).read_text(encoding="utf-8") for name in p.corpora}
    table = score_model(p.spec, corpora, p.context, p.batch_size, p.device)
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
