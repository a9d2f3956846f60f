from prh.preflight import preflight, write_report
from prh.provenance import script_provenance
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    report = preflight(snakemake.config)  # raises PreflightError naming every problem
    log.info("hub: %s; %d references", report["hub"], len(report["references"]))
    write_report(snakemake.output[0], report, script_provenance(snakemake))
