include: "inputs/density.smk"


rule density_summaries:
    """App. E: every sample's dense description summarised into about n words (a summary_<n> level) by the
    instruction-tuned summariser, greedy, with the paper's prompt; cached per model and level.
    """
    input:
        samples="data/{dataset}/samples.parquet",
        record="data/{dataset}/dataset.json",
        preflight=PREFLIGHT,
        fetched=fetched("density/summaries/model"),
        checkpoint=summariser_checkpoint,
        code=library_of("density/summaries.py"),
    output:
        "data/texts/density/{dataset}/{level}/summaries/{summariser}.parquet",
    log:
        "logs/density/{dataset}/{level}/summaries_{summariser}.log",
    benchmark:
        "logs/benchmarks/density_summaries/{dataset}/{level}/{summariser}.tsv"
    wildcard_constraints:
        summariser=re.escape(SUMMARISER["name"]) if SUMMARISER else "(?!)",
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        **model_resources("density_summaries", lambda wildcards: SUMMARISER),
    params:
        spec=lambda wildcards: DATASETS[wildcards.dataset],
        model=SUMMARISER,
        dense=SUMMARIES["dense"] if SUMMARIES else None,
        size=DENSITY["size"],
        device=config["embedding"]["device"],
    script:
        "../scripts/density/summaries.py"


rule density_captions:
    """The dataset's captions at one density level: regenerated from each scene's Z, a hub column, or the
    level's summaries."""
    input:
        samples="data/{dataset}/samples.parquet",
        record="data/{dataset}/dataset.json",
        summaries=level_summaries,
        code=library_of("density/captions.py"),
    output:
        samples="data/texts/density/{dataset}/{level}/samples.parquet",
        record="data/texts/density/{dataset}/{level}/dataset.json",
    log:
        "logs/density/{dataset}/{level}/captions.log",
    benchmark:
        "logs/benchmarks/density_captions/{dataset}/{level}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: DATASETS[wildcards.dataset],
        size=DENSITY["size"],
    script:
        "../scripts/density/captions.py"


rule density_alignment:
    """Best score over layer pairs of every vision x language pair at one level, for each Fig. 9 metric."""
    input:
        unpack(density_level_inputs),
        code=library_of("density/alignment.py"),
    output:
        "results/density/{dataset}/{level}/alignment.nc",
    log:
        "logs/density/{dataset}/{level}/alignment.log",
    benchmark:
        "logs/benchmarks/density_alignment/{dataset}/{level}.tsv"
    conda:
        "../envs/prh.yaml"
    resources:
        mem_mb=4000,
    params:
        **settings_of(
            "prh/experiments/density/alignment.py:level_alignment", ALIGNMENT
        )
        | {"metrics": {m: ALIGNMENT["metrics"][m] for m in DENSITY["metrics"]}},
        vision=DENSITY_VISION,
        language=DENSITY_LANGUAGE,
    script:
        "../scripts/density/alignment.py"


rule plot_caption_density:
    """Fig. 9: mean vision-language alignment against caption length, one panel per metric."""
    input:
        levels=lambda wildcards: [
            f"results/density/{wildcards.dataset}/{level}/alignment.nc"
            for level in DENSITY["levels"]
        ],
        code=library_of("density/plot_caption_density.py"),
    output:
        table="results/density/{dataset}/summary.parquet",
        figure=report(
            "results/figures/{dataset}/caption_density.png",
            caption="../report/caption_density.rst",
            category="Caption density (Fig. 9)",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/plots/{dataset}/caption_density.log",
    benchmark:
        "logs/benchmarks/plot_caption_density/{dataset}/caption_density.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/density/plot_caption_density.py"
