# Fetch jobs run where snakemake runs, which reaches the hub (compute nodes may not), unless the config
# names a transfer partition for them.
if not config["cluster"]["transfer_partition"]:

    localrules:
        fetch,


rule fetch:
    """One hub repository (a model, a dataset, a probe task) downloaded once into the hub cache at the commit
    preflight resolved, and verified file by file, before any job reads it; or Places-365's archives.
    Every other job reads the cache with HF_HUB_OFFLINE=1.
    """
    input:
        preflight=PREFLIGHT,
        code=library_of("fetch/fetch.py"),
    output:
        "results/fetch/{target}.json",
    log:
        "logs/fetch/{target}.log",
    benchmark:
        "logs/benchmarks/fetch/{target}.tsv"
    wildcard_constraints:
        target="|".join(re.escape(t) for t in FETCH) or "(?!)",
    priority: 50
    retries: 2
    conda:
        "../envs/prh.yaml"
    resources:
        **transfer_resources(),
    params:
        target=lambda wildcards: FETCH[wildcards.target],
        hub=config["hub"],
        spec=lambda wildcards: DATASETS.get(wildcards.target.removeprefix("datasets/")),
    script:
        "../scripts/fetch/fetch.py"
