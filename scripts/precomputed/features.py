from pathlib import Path

from prh.io.provenance import script_provenance
from prh.io.workflow import logged
from prh.models.precomputed import import_features

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    settings = {key: value for key, value in p.items() if key != "spec"}
    path = import_features(
        p.spec,
        Path(snakemake.input.record).parent,
        snakemake.output[0],
        dataset_name=snakemake.wildcards.dataset,
        provenance=script_provenance(snakemake),
        **settings,
    )
    log.info("%s -> %s", p.spec.get("url") or p.spec["path"], path)
