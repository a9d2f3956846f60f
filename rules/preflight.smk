rule preflight:
    """Every hub reference and local path of the run, resolved with metadata calls only, before any model
    job: one error names every problem; results/preflight.json records the commits and sizes it resolved.
    """
    input:
        code=library_of("preflight.py"),
    output:
        "results/preflight.json",
    log:
        "logs/preflight.log",
    benchmark:
        "logs/benchmarks/preflight.tsv"
    priority: 100
    conda:
        "../envs/prh.yaml"
    params:
        references=[r.as_dict() for r in hub_references(config)],
    script:
        "../scripts/preflight.py"
