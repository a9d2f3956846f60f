from prh.io.workflow import logged
from prh.models.precomputed import export_run

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    written = export_run(i.stores, i.scores[0] if i.scores else None, snakemake.params.corpus, snakemake.output[0])
    log.info("wrote %s", [str(path) for path in written])
