import json

from prh.preflight import Reference, preflight_references
from prh.provenance import script_provenance
from prh.workflow import atomic_path, logged

with logged(snakemake.log[0]) as log:
    refs = [Reference.from_dict(r) for r in snakemake.params.references]
    report = preflight_references(refs)  # raises PreflightError naming every problem
    log.info("hub: %s; %d references", report["hub"], len(refs))
    report["provenance"] = script_provenance(snakemake)
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
