import polars as pl
import xarray as xr

from prh.experiments.colour.figures import plot_colours
from prh.io.workflow import logged

with logged(snakemake.log[0]):
    with xr.open_dataset(snakemake.input.points) as points:
        plot_colours(pl.read_parquet(snakemake.input.table), points.load(), snakemake.output[0])
