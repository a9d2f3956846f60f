import xarray as xr

from prh.io.workflow import logged
from prh.plots.alignment import plot_cknna_versus_k

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input[0], engine="scipy") as ds:
        plot_cknna_versus_k(ds.load(), snakemake.output[0])
