rule embed:
    """Run one model over one dataset; stream every layer's pooled features into a Zarr store."""
    input:
        unpack(dataset_inputs),
        code=library_of("embed.py"),
    output:
        directory("results/features/{dataset}/{model}.zarr"),
    log:
        "logs/embed/{dataset}/{model}.log",
    benchmark:
        "logs/benchmarks/embed/{dataset}/{model}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in DATASETS),
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        mem_mb=6000,
        gpu=config["embedding"]["gpus"],
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        chunk=config["embedding"]["chunk"],
        device=config["embedding"]["device"],
    script:
        "../scripts/embed.py"
