import xarray as xr

from prh.io.workflow import logged
from prh.plots.alignment import plot_metric_variants

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input[0]) as ds:
        plot_metric_variants(ds.load(), snakemake.output[0])
