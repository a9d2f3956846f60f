from pathlib import Path

import polars as pl

from prh.data.store import read_captions
from prh.experiments.ladder.language import train_language
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    curves = train_language(
        read_captions(Path(snakemake.input.record).parent),
        out_dirs=snakemake.output.checkpoints,
        threads=snakemake.threads,
        **p.run,
    )
    write_table(pl.DataFrame(curves), snakemake.output.curves, script_provenance(snakemake) | p.run)
    log.info("%s", pl.DataFrame(curves).filter(pl.col("split") == "validation"))
