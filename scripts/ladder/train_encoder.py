from pathlib import Path

import polars as pl

from prh.data.store import read_captions
from prh.experiments.ladder.language import train_world_encoder
from prh.experiments.ladder.training import load_training_scenes
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p, folder = snakemake.params, Path(snakemake.input.record).parent
    curves = train_world_encoder(
        read_captions(folder),
        load_training_scenes(folder),
        out_dirs=snakemake.output.checkpoints,
        threads=snakemake.threads,
        **p.run,
    )
    write_table(pl.DataFrame(curves), snakemake.output.curves, script_provenance(snakemake) | p.run)
    log.info("%s", pl.DataFrame(curves).filter(pl.col("split") == "validation"))
