import json

import polars as pl

from prh.experiments.idealised.figures import plot_idealised_world
from prh.io.workflow import logged

with logged(snakemake.log[0]):
    facts = json.loads(open(snakemake.input.facts).read())
    plot_idealised_world(pl.read_parquet(snakemake.input.table), facts, snakemake.output[0])
