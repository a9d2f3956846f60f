import xarray as xr

from prh.experiments.ladder.families import family_table
from prh.experiments.ladder.figures import plot_family
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    with xr.open_dataset(snakemake.input.alignment, engine="scipy") as ds:
        table = family_table(ds.load(), p.members, p.factors, p.metric)
    write_table(table, snakemake.output.table, script_provenance(snakemake))
    plot_family(table, snakemake.output.figure, snakemake.wildcards.family, p.factors, p.metric)
    log.info("%s", table)
