from prh.alignment import align_pair, write_netcdf
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    pair = align_pair(
        snakemake.input.x,
        snakemake.input.y,
        metrics=snakemake.params.metrics,
        quantile=snakemake.params.quantile,
    )
    write_netcdf(pair, snakemake.output[0])
    log.info("%s", pair)
