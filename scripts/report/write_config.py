import yaml

from prh.io.provenance import script_provenance
from prh.io.workflow import atomic_path, logged

with logged(snakemake.log[0]) as log:
    provenance = script_provenance(snakemake)
    header = f"# config_hash: {provenance['config_hash']}\n# git_commit: {provenance['git_commit']}\n"
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(header + yaml.safe_dump(dict(snakemake.params.config), sort_keys=False))
    log.info("config written, %s", provenance["config_hash"])
