# Fig. 9's shared input functions and final outputs (rules in rules/density.smk).
from prh.experiments.density.levels import summary_words

# Fig. 9: the models of the density levels (empty lists in config: every vision / language model).
DENSITY_VISION = config["density"]["vision"] or RUNNABLE_VISION
DENSITY_LANGUAGE = config["density"]["language"] or RUNNABLE_LANGUAGE


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
