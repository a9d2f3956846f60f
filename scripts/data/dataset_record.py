from pathlib import Path

from prh.data.build import declare_dataset
from prh.io.provenance import add_provenance, script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    declare_dataset(Path(snakemake.output.record).parent, spec)
    record = add_provenance(snakemake.output.record, script_provenance(snakemake))
    log.info("dataset %s: declared, nothing downloaded: %s", spec["name"], record)
