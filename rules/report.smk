rule resolved_config:
    """The config this run used, defaults filled in, for the report."""
    input:
        code=library_of("report/write_config.py"),
    output:
        report(
            "results/config.yaml",
            caption="../report/config.rst",
            category="Configuration",
            labels={"file": "config (defaults filled in)"},
        ),
    log:
        "logs/config.log",
    benchmark:
        "logs/benchmarks/resolved_config.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        config=config,
    script:
        "../scripts/report/write_config.py"


rule job_costs:
    """Wall time and peak memory of every job, from the benchmark files, in a table and a figure."""
    input:
        outputs=lambda wildcards: all_outputs(with_costs=False),
        code=library_of("report/job_costs.py"),
    output:
        jobs="results/job_costs.parquet",
        figure=report(
            "results/figures/job_costs.png",
            caption="../report/job_costs.rst",
            category="Run",
            labels={"figure": "where the time goes"},
        ),
    log:
        "logs/job_costs.log",
    conda:
        "../envs/prh.yaml"
    params:
        folder="logs/benchmarks",
    script:
        "../scripts/report/job_costs.py"
