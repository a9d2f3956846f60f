from pathlib import Path

from prh.io.provenance import script_provenance
from prh.io.workflow import logged
from prh.models.embed import embed_datasets

with logged(snakemake.log[0]):
    p = snakemake.params
    embed_datasets(
        p.spec,
        [Path(record).parent for record in snakemake.input.records],
        list(snakemake.output),
        dataset_names=[f"probes/{task}" for task in p.tasks],
        chunk=p.chunk,
        threads=snakemake.threads,
        device=p.device,
        provenance=script_provenance(snakemake),
    )
