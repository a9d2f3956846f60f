from pathlib import Path

from prh.embed import embed_dataset
from prh.provenance import script_provenance
from prh.workflow import logged

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
