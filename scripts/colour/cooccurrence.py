from prh.experiments.colour.analysis import cooccurrence_table
from prh.io.netcdf import write_netcdf
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    ds = cooccurrence_table(**dict(snakemake.params.items()))
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds.attrs)
