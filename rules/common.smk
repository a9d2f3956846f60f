from itertools import combinations
from pathlib import Path

from prh.config import load_schema, validate_config

REPO = Path(workflow.basedir)

# Validate before anything else: a bad config stops here, naming the key or the model.
validate_config(config, load_schema(REPO / "schemas" / "config.schema.yaml"))

DATASETS = {d["name"]: d for d in config["datasets"]}
MODELS = {m["name"]: m for m in config["models"]}
LANGUAGE_MODELS = [name for name, m in MODELS.items() if m["modality"] == "language"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="[^/]+",
    model_x="[^/]+",
    model_y="[^/]+",


def library(*modules):
    """Library modules a rule depends on: editing one of them reruns the rule (mtime trigger)."""
    return [str(REPO / "prh" / module) for module in modules]


def model_pairs():
    """Unordered model pairs, names sorted, so adding a model never renames an existing pair."""
    return list(combinations(sorted(MODELS), 2))


def cross_modal_pairs():
    return [
        (x, y)
        for x, y in model_pairs()
        if MODELS[x]["modality"] != MODELS[y]["modality"]
    ]


def dataset_inputs(wildcards):
    """What a model reads from a dataset: images for vision, captions for language."""
    folder = f"data/{wildcards.dataset}"
    main = (
        "images.zarr"
        if MODELS[wildcards.model]["modality"] == "vision"
        else "captions.parquet"
    )
    return {"data": f"{folder}/{main}", "record": f"{folder}/dataset.json"}


def pair_files(wildcards):
    return [
        f"results/alignment/{wildcards.dataset}/pairs/{x}/{y}.nc"
        for x, y in model_pairs()
    ]


def all_outputs():
    outputs = []
    for dataset in DATASETS:
        figures = f"results/figures/{dataset}"
        outputs += [f"results/features/{dataset}/{model}.zarr" for model in MODELS]
        outputs += [
            f"results/alignment/{dataset}/alignment.nc",
            f"{figures}/best_alignment.png",
            f"{figures}/metric_agreement.png",
        ]
        if cross_modal_pairs():
            outputs += [f"{figures}/layers/{x}/{y}.png" for x, y in cross_modal_pairs()]
            outputs += [
                f"{figures}/cross_modal_metrics.png",
                f"{figures}/cknna_versus_k.png",
            ]
    if LANGUAGE_MODELS:
        outputs.append("results/lm_scores.parquet")
        if cross_modal_pairs():
            outputs += [
                f"results/figures/{dataset}/alignment_versus_lm_score.png"
                for dataset in DATASETS
            ]
    return outputs
