from prh.alignment import aggregate, write_netcdf
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    ds = aggregate(snakemake.input.pairs, snakemake.params.models)
    write_netcdf(ds, snakemake.output[0])
    log.info("%s", ds)
