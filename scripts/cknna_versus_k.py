from prh.alignment import cknna_versus_k, write_netcdf
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    ds = cknna_versus_k(snakemake.input.stores, p.models, p.ks, p.quantile, p.quantile_mode)
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds)
