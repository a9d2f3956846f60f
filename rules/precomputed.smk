PRECOMPUTED_SETTINGS = config["precomputed"]


def precomputed_file(wildcards):
    """A features file read from a local path is an input: replacing it imports it again."""
    spec = MODELS[wildcards.model]
    return [spec["path"]] if spec.get("path") else []


def export_inputs(wildcards):
    """Every model's features store of the dataset and, for the causal LMs' bits-per-byte, their scores."""
    stores = [
        f"results/features/{wildcards.dataset}/{m}.zarr"
        for m in DATASET_MODELS[wildcards.dataset]
        if m != WORLD
    ]
    scores = ["results/lm_scores.parquet"] if LANGUAGE_MODELS else []
    return {"stores": stores, "scores": scores}


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
        spec=lambda wildcards: MODELS[wildcards.model],
        **settings_of(
            "prh/models/precomputed.py:import_features",
            PRECOMPUTED_SETTINGS,
            config["embedding"],
        ),
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
        corpus=LM_SCORE["corpus"],
    script:
        "../scripts/precomputed/export.py"
