from prh.alignment import aggregate, write_netcdf
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    ds = aggregate(snakemake.input.pairs, snakemake.params.models)
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds)
