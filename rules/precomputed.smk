include: "inputs/precomputed.smk"


PRECOMPUTED_SETTINGS = config["precomputed"]


rule precomputed_features:
    """One model's representations computed elsewhere (source: features): fetched once into the cache,
    checked (one finite row per sample of the dataset) and written as the store an embedded model writes.
    """
    input:
        record="data/{dataset}/dataset.json",
        preflight=PREFLIGHT,
        file=precomputed_file,
        code=library_of("precomputed/features.py"),
    output:
        directory("results/features/{dataset}/{model}.zarr"),
    log:
        "logs/precomputed/{dataset}/{model}.log",
    benchmark:
        "logs/benchmarks/precomputed_features/{dataset}/{model}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in DATASETS),
        model="|".join(re.escape(m) for m in PRECOMPUTED) or "(?!)",
    conda:
        "../envs/prh.yaml"
    params:
        **settings_of(
            "prh/models/precomputed.py:import_features",
            PRECOMPUTED_SETTINGS,
            config["embedding"],
        ),
        spec=lambda wildcards: MODELS[wildcards.model],
    script:
        "../scripts/precomputed/features.py"


rule export_features:
    """Every model's features of one dataset in the authors' layout and file names (a target to ask for:
    ``snakemake results/export/{dataset}``)."""
    input:
        unpack(export_inputs),
        code=library_of("precomputed/export.py"),
    output:
        directory("results/export/{dataset}"),
    log:
        "logs/precomputed/export_{dataset}.log",
    benchmark:
        "logs/benchmarks/export_features/{dataset}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        corpus=config["lm_score"]["corpus"],
    script:
        "../scripts/precomputed/export.py"
