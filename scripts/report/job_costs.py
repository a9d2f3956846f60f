from prh.io.job_costs import by_rule, read_benchmarks
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table
from prh.plots.report import plot_job_costs

with logged(snakemake.log[0]) as log:
    jobs = read_benchmarks(snakemake.params.folder)
    summary = by_rule(jobs)
    write_table(jobs, snakemake.output.jobs, script_provenance(snakemake))
    plot_job_costs(summary, snakemake.output.figure)
    log.info("%s", summary)
