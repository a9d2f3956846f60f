rule dataset:
    """Generate the shapes world, or import a dataset: images, per-sample captions/labels, fingerprint."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("datasets", "dataset"),
        code=library_of("data/dataset.py"),
    output:
        images=directory("data/{dataset}/images.zarr"),
        samples="data/{dataset}/samples.parquet",
        record="data/{dataset}/dataset.json",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "logs/benchmarks/dataset/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in DATASETS if d not in DECLARED) or "(?!)",
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: DATASETS[wildcards.dataset],
    script:
        "../scripts/data/dataset.py"


rule dataset_record:
    """The record of a hub dataset that only precomputed models use (size and a fingerprint of its
    declaration): nothing of it is downloaded."""
    input:
        code=library_of("data/dataset_record.py"),
    output:
        record="data/{dataset}/dataset.json",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "logs/benchmarks/dataset_record/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in DECLARED) or "(?!)",
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: DATASETS[wildcards.dataset],
    script:
        "../scripts/data/dataset_record.py"
