from prh.alignment.variants import metric_variants
from prh.io.netcdf import write_netcdf
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    ds = metric_variants(snakemake.input.stores, **dict(snakemake.params.items()))
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds)
