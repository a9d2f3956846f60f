from pathlib import Path

from prh.alignment.pairs import pair_scores, write_pair
from prh.data.store import read_record
from prh.io.features import check_store
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    p, i = snakemake.params, snakemake.input
    record = read_record(Path(i.record).parent)
    for store in (i.x_features, i.y_features):
        check_store(store, record, snakemake.wildcards.dataset)
    pair = pair_scores(
        i.x,
        i.y,
        metrics=p.metrics,
        permutations=p.permutations,
        null_seed=p.null_seed,
        alpha=p.alpha,
        resamples=p.resamples,
        level=p.level,
        bootstrap_seed=p.bootstrap_seed,
        device=p.device,
        x_features=i.x_features,
        y_features=i.y_features,
    )
    write_pair(pair, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", {name: values for name, (_, values) in pair[0].items() if name != "score"})
