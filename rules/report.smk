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


rule results_page:
    """What the run showed, written from its trend tables with the commit and the machine: never typed."""
    input:
        trends=expand("results/trends/{dataset}.parquet", dataset=TREND_DATASETS),
        controls=expand(
            "results/trends/{dataset}_controls.parquet", dataset=TREND_DATASETS
        ),
        families=list(RESULT_TABLES.values()),
        probes=(
            ["results/probes/accuracy.parquet", "results/probes/competence.parquet"]
            if PROBE_TASKS and RUNNABLE_VISION
            else []
        ),
        code=library_of("report/results_page.py"),
    output:
        report(
            "results/results.md",
            caption="../report/results_page.rst",
            category="Run",
            labels={"page": "what this run showed"},
        ),
    log:
        "logs/results_page.log",
    benchmark:
        "logs/benchmarks/results_page.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        metric=TREND_METRIC,
        datasets=TREND_DATASETS,
        families=list(RESULT_TABLES),
        # the probes' positive control: pretrained models against the random initialisations
        pretrained=[
            m for m in RUNNABLE_VISION if m not in LADDER.rungs and m not in CONTROLS
        ],
        random=[m for m in RUNNABLE_VISION if CONTROLS.get(m) == "random"],
    script:
        "../scripts/report/results_page.py"


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
