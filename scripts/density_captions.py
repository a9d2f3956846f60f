from pathlib import Path

from prh.density import write_level
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    out = Path(snakemake.output.record).parent
    record = write_level(Path(snakemake.input.record).parent, out, snakemake.wildcards.level,
                         snakemake.params.spec, script_provenance(snakemake), snakemake.params.size)  # fmt: skip
    log.info("%s", record)
