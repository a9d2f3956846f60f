from prh.job_costs import by_rule, read_benchmarks
from prh.plots import plot_job_costs
from prh.provenance import script_provenance
from prh.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    jobs = read_benchmarks(snakemake.params.folder)
    summary = by_rule(jobs)
    write_table(jobs, snakemake.output.jobs, script_provenance(snakemake))
    plot_job_costs(summary, snakemake.output.figure)
    log.info("%s", summary)
