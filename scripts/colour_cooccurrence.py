from prh.alignment import write_netcdf
from prh.colour import cooccurrence_table
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    ds = cooccurrence_table(p.images, p.bins, p.radius, p.pairs, p.seed)
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds.attrs)
