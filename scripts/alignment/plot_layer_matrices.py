import xarray as xr

from prh.io.workflow import logged
from prh.plots.alignment import plot_layer_matrices

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input[0], engine="scipy") as pair:
        plot_layer_matrices(pair.load(), snakemake.output[0], snakemake.params.rows)
