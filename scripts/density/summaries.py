from pathlib import Path

import torch

from prh.experiments.density.summaries import write_summaries
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    record = write_summaries(Path(snakemake.input.record).parent, snakemake.output[0], snakemake.wildcards.level,
                             p.spec, p.model, p.dense, p.size, script_provenance(snakemake), p.device)  # fmt: skip
    check = record["check"]
    log.info("%s: mean %.1f words (target %d), %.0f%% within ±%.0f%%, %d empty", record["level"], check["mean_words"],
             check["target"], 100 * check["within"], 100 * check["tolerance"], check["empty"])  # fmt: skip
