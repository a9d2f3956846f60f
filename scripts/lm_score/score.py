from pathlib import Path

import torch

from prh.analysis.lm_score import score_model
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table
from prh.models.precomputed import stored_fields

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    texts = [name for name in p.corpora if f"corpus_{name}" in snakemake.input.keys()]
    corpora = {name: Path(snakemake.input[f"corpus_{name}"]).read_text(encoding="utf-8") for name in texts}
    stored = stored_fields(snakemake.input.features) if "features" in snakemake.input.keys() else {}
    table = score_model(p.spec, corpora, p.context, p.batch_size, p.device, stored=stored, order=p.corpora)
    write_table(table, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", table)
