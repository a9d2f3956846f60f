import xarray as xr

from prh.io.workflow import logged
from prh.plots.alignment import plot_best_alignment, plot_metric_agreement

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input[0], engine="scipy") as ds:
        ds = ds.load()
    plot_best_alignment(ds, snakemake.output.best)
    plot_metric_agreement(ds, snakemake.output.agreement)
