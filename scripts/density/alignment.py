from pathlib import Path

from prh.experiments.density.alignment import level_alignment
from prh.io.netcdf import write_netcdf
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    p, i = snakemake.params, snakemake.input
    ds = level_alignment(
        Path(i.record).parent,
        Path(i.dataset_record).parent,
        vision=dict(zip(p.vision, i.vision, strict=True)),
        language=dict(zip(p.language, i.language, strict=True)),
        **{key: value for key, value in p.items() if key not in ("vision", "language")},
    )
    write_netcdf(ds, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", ds)
