# The ladder's shared input functions and final outputs (rules in rules/ladder.smk).
TRAINING = config.get("training") or {}


def run_params(wildcards):
    """Everything a training job is given: the run, its modality's schedule, and for vision its attributes."""
    run = LADDER.runs[wildcards.run]
    schedule = {k: v for k, v in TRAINING[run.schedule].items()}
    params = {"run": run.name, "width": run.width, "seed": run.seed, **schedule}
    params["validation"] = TRAINING["scenes"]["validation"]
    if run.modality == "vision":
        params["attributes"] = TRAINING["task_sets"][run.task_set]
    return params


def runs_of(schedule):
    """Wildcard constraint: the ladder's training runs of ``schedule`` (vision, language, encoder)."""
    names = [n for n, r in LADDER.runs.items() if r.schedule == schedule]
    return "|".join(re.escape(n) for n in names) or "(?!)"


def family_members(wildcards):
    """The family's rungs with their factor values (the plot groups them by the varied factor)."""
    rungs = [LADDER.rungs[name] for name in LADDER.families[wildcards.family]]
    return [
        {
            "name": r.name,
            "width": r.run.width,
            "task_set": r.run.task_set,
            "step": r.step,
            "seed": r.run.seed,
        }
        for r in rungs
    ]


# The ladder's final outputs: every run's checkpoints and curves (a lost one is made again, not only what
# reads it), the training curves, and each family's figure on every dataset that knows the world Z.
if LADDER.runs:
    EXPERIMENT_OUTPUTS.append("results/figures/training_curves.png")
for name, run in LADDER.runs.items():
    steps = TRAINING.get(run.schedule, {}).get("checkpoints", [])
    EXPERIMENT_OUTPUTS.extend(run.checkpoint(step) for step in steps)
    EXPERIMENT_OUTPUTS.append(f"results/training/{name}.parquet")
for dataset, models in DATASET_MODELS.items():
    if len(models) >= 2 and WORLD in models:
        EXPERIMENT_OUTPUTS.extend(
            f"results/figures/{dataset}/family_{family}.png"
            for family in LADDER.families
        )
        RESULT_TABLES.update(
            {
                f"{dataset}/{family}": f"results/families/{dataset}/{family}.parquet"
                for family in LADDER.families
            }
        )
