import polars as pl
import xarray as xr

from prh.experiments.density.figures import density_summary, plot_caption_density
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    levels = [xr.open_dataset(path).load() for path in snakemake.input.levels]
    summary = pl.DataFrame(density_summary(levels))
    write_table(summary, snakemake.output.table, script_provenance(snakemake))
    plot_caption_density(summary, snakemake.output.figure)
    log.info("%s", summary)
