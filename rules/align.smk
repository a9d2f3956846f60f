rule align_pair:
    """Every layer of one model against every layer of another, for each configured metric."""
    input:
        x="results/features/{dataset}/{model_x}.zarr",
        y="results/features/{dataset}/{model_y}.zarr",
        code=library("metrics.py", "alignment.py"),
    output:
        "results/alignment/{dataset}/pairs/{model_x}/{model_y}.nc",
    log:
        "logs/align/{dataset}/{model_x}/{model_y}.log",
    conda:
        "../envs/prh.yaml"
    resources:
        mem_mb=2000,
    params:
        metrics=config["alignment"]["metrics"],
        quantile=config["alignment"]["quantile"],
    script:
        "../scripts/align_pair.py"


rule aggregate_alignment:
    """One Dataset per metric over all model pairs: (model_x, model_y, layer_x, layer_y) plus best scores."""
    input:
        pairs=pair_files,
        code=library("alignment.py"),
    output:
        "results/alignment/{dataset}/{metric}.nc",
    log:
        "logs/align/{dataset}/aggregate_{metric}.log",
    conda:
        "../envs/prh.yaml"
    params:
        models=[
            {"name": m["name"], "modality": m["modality"]} for m in config["models"]
        ],
    script:
        "../scripts/aggregate_alignment.py"
