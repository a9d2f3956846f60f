from pathlib import Path

from prh.io.provenance import script_provenance
from prh.io.workflow import logged
from prh.models.embed import embed_dataset

with logged(snakemake.log[0]):
    embed_dataset(
        snakemake.params.spec,
        Path(snakemake.input.record).parent,
        snakemake.output[0],
        dataset_name=snakemake.params.get("dataset_name") or snakemake.wildcards.dataset,
        chunk=snakemake.params.chunk,
        threads=snakemake.threads,
        device=snakemake.params.device,
        provenance=script_provenance(snakemake),
    )
