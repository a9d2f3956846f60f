from pathlib import Path

import polars as pl

from prh.datasets import read_captions
from prh.provenance import script_provenance
from prh.train import load_training_scenes
from prh.train.language import train_world_encoder
from prh.workflow import logged, write_table

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
