from prh.experiments.density.levels import summary_words

# Fig. 9: the models of the density levels (empty lists in config: every vision / language model).
DENSITY_VISION = config["density"]["vision"] or VISION_MODELS
DENSITY_LANGUAGE = config["density"]["language"] or LANGUAGE_MODELS


def density_level_inputs(wildcards):
    """A level's captions and its language models' features, and the dataset's vision features (reused)."""
    level = f"density/{wildcards.dataset}/{wildcards.level}"
    return {
        "record": f"data/texts/{level}/dataset.json",
        "dataset_record": f"data/{wildcards.dataset}/dataset.json",
        "vision": [
            f"results/features/{wildcards.dataset}/{m}.zarr" for m in DENSITY_VISION
        ],
        "language": [f"results/texts/{level}/{m}.zarr" for m in DENSITY_LANGUAGE],
    }


# App. E: the instruction-tuned model that writes the summary levels (summary_<n>), when one is configured.
SUMMARIES = config["density"]["summaries"]
SUMMARISER = SUMMARIES["model"] if SUMMARIES else None


def level_summaries(wildcards):
    """A summary level's captions come from its summaries file; other levels have none."""
    if SUMMARIES and summary_words(wildcards.level):
        name = SUMMARISER["name"]
        return [
            f"data/texts/density/{wildcards.dataset}/{wildcards.level}/summaries/{name}.parquet"
        ]
    return []


def summariser_checkpoint(wildcards):
    """A summariser read from a folder the workflow writes (a trained rung) depends on it."""
    return [SUMMARISER["path"]] if SUMMARISER.get("path") else []


if config["density"]["dataset"]:
    EXPERIMENT_OUTPUTS.append(
        f"results/figures/{config['density']['dataset']}/caption_density.png"
    )


DENSITY = config["density"]


rule density_summaries:
    """App. E: every sample's dense description summarised into about n words (a summary_<n> level) by the
    instruction-tuned summariser, greedy, with the paper's prompt; cached per model and level.
    """
    input:
        samples="data/{dataset}/samples.parquet",
        record="data/{dataset}/dataset.json",
        preflight=PREFLIGHT,
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
        vision=DENSITY_VISION,
        language=DENSITY_LANGUAGE,
        metrics={m: ALIGNMENT["metrics"][m] for m in DENSITY["metrics"]},
        quantile=ALIGNMENT["quantile"],
        quantile_mode=ALIGNMENT["quantile_mode"],
        concat_layers=ALIGNMENT["concat_layers"],
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
