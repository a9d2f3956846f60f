from pathlib import Path

from prh.io.provenance import script_provenance
from prh.io.workflow import logged
from prh.models.world import write_world_features

with logged(snakemake.log[0]) as log:
    path = write_world_features(Path(snakemake.input.record).parent, snakemake.output[0], script_provenance(snakemake))
    log.info("latent scenes of %s -> %s", snakemake.wildcards.dataset, path)
