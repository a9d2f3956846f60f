# Fig. 4's shared input functions and final outputs (rules in rules/downstream.smk).
from prh.experiments.downstream.tasks import resolve_table


def published(task):
    """Whether a task's accuracies are read from a table of published scores (GSM8K) rather than scored."""
    return config["downstream"]["tasks"][task]["kind"] == "published"


def task_file(wildcards):
    """A task read from a parquet table depends on it: editing the table re-reads it."""
    task = config["downstream"]["tasks"][wildcards.mc_task]
    return [resolve_table(task["path"])] if task["kind"] == "table" else []


def downstream_scores(wildcards):
    """Fig. 4's accuracies: one table of published scores, or each language model's scored file."""
    if published(wildcards.mc_task):
        return [f"results/published/{wildcards.mc_task}.parquet"]
    return [
        f"results/downstream/{wildcards.mc_task}/{m}.parquet" for m in RUNNABLE_LANGUAGE
    ]


if LANGUAGE_MODELS:
    EXPERIMENT_OUTPUTS.extend(
        f"results/figures/downstream_{task}.png"
        for task in config["downstream"]["tasks"]
    )


DOWNSTREAM = config["downstream"]
