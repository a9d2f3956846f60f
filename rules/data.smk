rule shapes_world:
    """Generate the shapes world: images, captions and latent attributes, from a seed."""
    input:
        code=library("datasets.py"),
    output:
        images=directory("data/{dataset}/images.zarr"),
        captions="data/{dataset}/captions.parquet",
        record="data/{dataset}/dataset.json",
    log:
        "logs/data/{dataset}.log",
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: DATASETS[wildcards.dataset],
    script:
        "../scripts/make_shapes_world.py"
