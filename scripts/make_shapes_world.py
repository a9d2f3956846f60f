from pathlib import Path

from prh.datasets import generate_shapes_world
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    record = generate_shapes_world(Path(snakemake.output.record).parent, spec["size"], spec["seed"])
    log.info("dataset %s: %s", spec["name"], record)
