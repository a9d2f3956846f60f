from prh.io.fetch import fetch_job
from prh.io.workflow import logged

with logged(snakemake.log[0]) as logger:
    manifest = fetch_job(
        snakemake.params.target,
        snakemake.input.preflight,
        snakemake.params.hub,
        snakemake.output[0],
        spec=snakemake.params.spec,
    )
    logger.info("fetched %s", {k: v for k, v in manifest.items() if k != "files"})
