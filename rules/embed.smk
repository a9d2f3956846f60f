rule embed:
    """Run one model over one dataset; stream every layer's pooled features into a Zarr store."""
    input:
        unpack(dataset_inputs),
        preflight=PREFLIGHT,
        fetched=fetched("models", "model"),
        code=library_of("embed/embed.py"),
    output:
        directory("results/features/{dataset}/{model}.zarr"),
    log:
        "logs/embed/{dataset}/{model}.log",
    benchmark:
        "logs/benchmarks/embed/{dataset}/{model}.tsv"
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in DATASETS),
        # the world's store comes from world_features, a features model's from precomputed_features
        model=rf"(?!(?:{'|'.join(map(re.escape, [WORLD, *PRECOMPUTED]))})\.zarr$)[^/]+",
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        **model_resources("embed"),
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        chunk=config["embedding"]["chunk"],
        device=config["embedding"]["device"],
    script:
        "../scripts/embed/embed.py"


rule world_features:
    """The latent scenes Z of a shapes-world dataset as a one-layer features store ("world")."""
    input:
        samples="data/{dataset}/samples.parquet",
        record="data/{dataset}/dataset.json",
        code=library_of("embed/world_features.py"),
    output:
        directory(f"results/features/{{dataset}}/{WORLD}.zarr"),
    log:
        "logs/embed/{dataset}/world.log",
    benchmark:
        "logs/benchmarks/world_features/{dataset}/world.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/embed/world_features.py"


rule embed_texts:
    """One language model over a text set that only language models read: a caption-density level
    (``texts``: density/{dataset}/{level}) or a colour set's template sentences (colours/{set}).
    """
    input:
        preflight=PREFLIGHT,
        fetched=fetched("models", "model"),
        data="data/texts/{texts}/samples.parquet",
        record="data/texts/{texts}/dataset.json",
        checkpoint=checkpoint_of,
        code=library_of("embed/embed.py"),
    output:
        directory("results/texts/{texts}/{model}.zarr"),
    log:
        "logs/embed/texts/{texts}/{model}.log",
    benchmark:
        "logs/benchmarks/embed_texts/{texts}/{model}.tsv"
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        **model_resources("embed_texts"),
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        chunk=config["embedding"]["chunk"],
        device=config["embedding"]["device"],
        dataset_name=lambda wildcards: wildcards.texts,
    script:
        "../scripts/embed/embed.py"
