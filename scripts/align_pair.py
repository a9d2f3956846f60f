from pathlib import Path

from prh.alignment import align_pair, write_netcdf
from prh.datasets import read_record
from prh.features import check_store
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    record = read_record(Path(snakemake.input.record).parent)
    for store in (snakemake.input.x, snakemake.input.y):
        check_store(store, record, snakemake.wildcards.dataset)
    pair = align_pair(
        snakemake.input.x,
        snakemake.input.y,
        metrics=p.metrics,
        quantile=p.quantile,
        quantile_mode=p.quantile_mode,
        concat_layers=p.concat_layers,
        normalize=p.normalize,
        permutations=p.permutations,
        null_seed=p.null_seed,
        resamples=p.resamples,
        level=p.level,
        bootstrap_seed=p.bootstrap_seed,
        device=p.device,
    )
    write_netcdf(pair, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", pair)
