from pathlib import Path

from prh.experiments.density.levels import write_level
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    out = Path(snakemake.output.record).parent
    summaries = snakemake.input.summaries[0] if snakemake.input.summaries else None  # a summary level's file
    p = snakemake.params
    record = write_level(Path(snakemake.input.record).parent, out, snakemake.wildcards.level, p.spec,
                         script_provenance(snakemake), p.size, summaries)  # fmt: skip
    log.info("%s", record)
