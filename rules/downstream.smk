include: "inputs/downstream.smk"


rule downstream_task:
    """One multiple-choice task's items (context, endings, label), generated or read."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("downstream/tasks", "mc_task"),
        table=task_file,
        code=library_of("downstream/task.py"),
    output:
        "data/downstream/{mc_task}.parquet",
    log:
        "logs/downstream/task_{mc_task}.log",
    benchmark:
        "logs/benchmarks/downstream_task/{mc_task}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: DOWNSTREAM["tasks"][wildcards.mc_task],
    script:
        "../scripts/downstream/task.py"


rule downstream_score:
    """One language model's accuracy on one task by log-likelihood (encoders: not applicable)."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("models", "model"),
        task="data/downstream/{mc_task}.parquet",
        checkpoint=checkpoint_of,
        code=library_of("downstream/score.py"),
    output:
        "results/downstream/{mc_task}/{model}.parquet",
    log:
        "logs/downstream/{mc_task}/{model}.log",
    benchmark:
        "logs/benchmarks/downstream_score/{mc_task}/{model}.tsv"
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        **model_resources("downstream_score"),
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        device=config["embedding"]["device"],
    script:
        "../scripts/downstream/score.py"


rule published_scores:
    """A generation benchmark's accuracies for every language model, read from its versioned table with their
    citations (a model the table lacks is not applicable); parameter counts come from the features stores.
    """
    input:
        table=lambda wildcards: resolve_table(
            DOWNSTREAM["tasks"][wildcards.mc_task]["table"]
        ),
        features=[
            f"results/features/{DOWNSTREAM['dataset']}/{m}.zarr"
            for m in LANGUAGE_MODELS
        ],
        code=library_of("downstream/published_scores.py"),
    output:
        "results/published/{mc_task}.parquet",
    log:
        "logs/downstream/published_{mc_task}.log",
    benchmark:
        "logs/benchmarks/published_scores/{mc_task}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        models=lambda wildcards: [MODELS[m] for m in LANGUAGE_MODELS],
    script:
        "../scripts/downstream/published_scores.py"


rule plot_downstream:
    """Fig. 4: alignment to the reference vision model against downstream accuracy."""
    input:
        scores=downstream_scores,
        alignment=f"results/alignment/{DOWNSTREAM['dataset']}/alignment.nc",
        lm_scores="results/lm_scores.parquet",
        code=library_of("downstream/plot_downstream.py"),
    output:
        report(
            "results/figures/downstream_{mc_task}.png",
            caption="../report/downstream.rst",
            category="Downstream (Fig. 4)",
            labels={"task": "{mc_task}"},
        ),
    log:
        "logs/plots/downstream_{mc_task}.log",
    benchmark:
        "logs/benchmarks/plot_downstream/downstream_{mc_task}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        reference=DOWNSTREAM["reference"],
        metric=DOWNSTREAM["metric"],
        corpus=LM_SCORE["corpus"],
        accuracy=lambda wildcards: (
            "accuracy" if published(wildcards.mc_task) else DOWNSTREAM["accuracy"]
        ),
    script:
        "../scripts/downstream/plot_downstream.py"
