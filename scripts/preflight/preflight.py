from prh.io.provenance import script_provenance
from prh.io.workflow import logged
from prh.preflight import preflight, write_report

with logged(snakemake.log[0]) as log:
    report = preflight(snakemake.config)  # raises PreflightError naming every problem
    log.info("hub: %s; %d references", report["hub"], len(report["references"]))
    write_report(snakemake.output[0], report, script_provenance(snakemake))
