from prh.alignment.states import compute_state, write_state
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    p = snakemake.params
    state, info = compute_state(
        snakemake.input.features,
        p.metrics,
        quantile=p.quantile,
        quantile_mode=p.quantile_mode,
        concat_layers=p.concat_layers,
        normalize=p.normalize,
        dense_limit=p.dense_limit,
        knn_method=p.knn_method,
        block=p.block,
        device=p.device,
        resamples=p.resamples,
        bootstrap_seed=p.bootstrap_seed,
    )
    write_state(state, snakemake.output[0], script_provenance(snakemake))
    log.info("%s\n%s", state, info)
