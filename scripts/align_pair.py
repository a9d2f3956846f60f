from prh.alignment import align_pair, write_netcdf
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
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
    write_netcdf(pair, snakemake.output[0])
    log.info("%s", pair)
