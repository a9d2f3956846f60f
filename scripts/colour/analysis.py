from pathlib import Path

import xarray as xr

from prh.experiments.colour.analysis import colour_set_analysis
from prh.io.netcdf import write_netcdf
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    p, i = snakemake.params, snakemake.input
    with xr.open_dataset(i.cooccurrence) as cooccurrence:
        table, points = colour_set_analysis(
            cooccurrence.load(),
            Path(i.record).parent,
            dict(zip(p.language, i.language, strict=True)),
            **{key: value for key, value in p.items() if key != "language"},
        )
    provenance = script_provenance(snakemake)
    write_table(table, snakemake.output.table, provenance)
    write_netcdf(points, snakemake.output.points, provenance)
    log.info("%s", table)
