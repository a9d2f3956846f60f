from pathlib import Path

from prh.experiments.colour.analysis import write_sentences
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    out = Path(snakemake.output.record).parent
    log.info("%s", write_sentences(snakemake.params.colours, out, script_provenance(snakemake)))
