from pathlib import Path

from prh.data.shapes import TRAIN_STREAM, generate_shapes_world
from prh.io.provenance import add_provenance, script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    scenes = snakemake.params.scenes
    size = scenes["size"] + scenes["validation"]  # the last `validation` scenes are held out
    generate_shapes_world(Path(snakemake.output.record).parent, size, scenes["seed"], stream=TRAIN_STREAM)
    log.info("training scenes: %s", add_provenance(snakemake.output.record, script_provenance(snakemake)))
