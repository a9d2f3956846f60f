from prh.alignment import metric_variants, write_netcdf
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    ds = metric_variants(snakemake.input.stores, p.models, p.metrics, p.ks, p.sizes, p.seed, p.quantile,
                         p.quantile_mode)  # fmt: skip
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds)
