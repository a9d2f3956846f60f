import json

import polars as pl

from prh.plots import plot_idealised_world
from prh.workflow import logged

with logged(snakemake.log[0]):
    facts = json.loads(open(snakemake.input.facts).read())
    plot_idealised_world(pl.read_parquet(snakemake.input.table), facts, snakemake.output[0])
