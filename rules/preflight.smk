# Preflight runs where snakemake runs, which reaches the hub; cluster nodes may not.
localrules:
    preflight,


rule preflight:
    """Every hub reference and local path of the run, resolved with metadata calls only, before any model
    job: one error names every problem; results/preflight.json records the commits and sizes it resolved.
    It runs when that file is missing; when the references change, rules/common.smk checks them again
    while planning and writes the new report when a run starts (prh.preflight.renewed_report), so no params, code
    input or script makes this job rerun.
    """
    output:
        "results/preflight.json",
    log:
        "logs/preflight.log",
    benchmark:
        "logs/benchmarks/preflight.tsv"
    priority: 100
    conda:
        "../envs/prh.yaml"
    run:
        preflight_job(
            config, output[0], log[0], run_provenance(config, REPO) | {"rule": rule}
        )
