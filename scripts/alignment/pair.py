from pathlib import Path

from prh.alignment.pairs import pair_scores, write_pair
from prh.data.store import read_record
from prh.io.features import check_store
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    record = read_record(Path(i.record).parent)
    for store in (i.x_features, i.y_features):
        check_store(store, record, snakemake.wildcards.dataset)
    pair = pair_scores(i.x, i.y, x_features=i.x_features, y_features=i.y_features, **dict(snakemake.params.items()))
    write_pair(pair, snakemake.output[0], script_provenance(snakemake))
    log.info("%s", {name: values for name, (_, values) in pair[0].items() if name != "score"})
