import xarray as xr

from prh.plots import plot_metric_variants
from prh.workflow import logged

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input[0]) as ds:
        plot_metric_variants(ds.load(), snakemake.output[0])
