PROBES = config.get("probes") or {}


rule probe_task:
    """Build one labelled probe task: images, labels and train/val/test splits, fingerprint."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("probes/tasks", "task"),
        code=library_of("probes/task.py"),
    output:
        images=directory("data/probes/{task}/images.zarr"),
        samples="data/probes/{task}/samples.parquet",
        record="data/probes/{task}/dataset.json",
    log:
        "logs/data/probes/{task}.log",
    benchmark:
        "logs/benchmarks/probe_task/probes/{task}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        spec=lambda wildcards: PROBE_TASKS[wildcards.task],
    script:
        "../scripts/probes/task.py"


if PROBE_TASKS:

    rule embed_probe_tasks:
        """One vision model over every probe task, loaded once: for these small sets a job's start-up and
        the model load cost more than the forward passes."""
        input:
            preflight=PREFLIGHT,
            fetched=fetched("models", "model"),
            records=[f"data/probes/{task}/dataset.json" for task in PROBE_TASKS],
            images=[f"data/probes/{task}/images.zarr" for task in PROBE_TASKS],
            checkpoint=checkpoint_of,
            code=library_of("probes/embed_tasks.py"),
        output:
            [
                directory(f"results/features/probes/{task}/{{model}}.zarr")
                for task in PROBE_TASKS
            ],
        log:
            "logs/embed/probes/{model}.log",
        benchmark:
            "logs/benchmarks/embed_probe_tasks/{model}.tsv"
        conda:
            "../envs/prh.yaml"
        threads: config["embedding"]["threads"]
        resources:
            **model_resources("embed_probe_tasks"),
        params:
            spec=lambda wildcards: MODELS[wildcards.model],
            tasks=list(PROBE_TASKS),
            chunk=config["embedding"]["chunk"],
            device=config["embedding"]["device"],
        script:
            "../scripts/probes/embed_tasks.py"


rule probe:
    """Linear probes of one vision model on every task: C (and optionally the layer) chosen on validation,
    refit on train + validation, accuracy on test; one row per task."""
    input:
        features=[
            f"results/features/probes/{task}/{{model}}.zarr" for task in PROBE_TASKS
        ],
        samples=[f"data/probes/{task}/samples.parquet" for task in PROBE_TASKS],
        records=[f"data/probes/{task}/dataset.json" for task in PROBE_TASKS],
        code=library_of("probes/probe.py"),
    output:
        "results/probes/models/{model}.parquet",
    log:
        "logs/probes/{model}.log",
    benchmark:
        "logs/benchmarks/probe/{model}.tsv"
    conda:
        "../envs/prh.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        # layer, C, max_iter and seed of probes; the tasks by name
        **settings_of("prh/analysis/probes.py:probe_model", PROBES)
        | {"tasks": list(PROBE_TASKS)},
    script:
        "../scripts/probes/probe.py"


rule competence:
    """All probe accuracies in one table, which tasks each model solves, and its competence."""
    input:
        probes=probe_files,
        code=library_of("probes/competence.py"),
    output:
        accuracy="results/probes/accuracy.parquet",
        competence="results/probes/competence.parquet",
    log:
        "logs/probes/competence.log",
    benchmark:
        "logs/benchmarks/competence.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        **settings_of("prh/analysis/probes.py:competence", PROBES),
    script:
        "../scripts/probes/competence.py"


rule plot_competence_alignment:
    """Fig. 2 (left): vision models binned by competence, mean pairwise alignment within each bin."""
    input:
        unpack(fig2_inputs),
        trends="results/trends/{dataset}.parquet",
        code=library_of("probes/plot_competence_alignment.py"),
    output:
        report(
            "results/figures/{dataset}/competence_alignment.png",
            caption="../report/competence_alignment.rst",
            category="Competence",
            subcategory="{dataset}",
            labels={"figure": "alignment within competence bins (Fig. 2 left)"},
        ),
    log:
        "logs/plots/{dataset}/competence_alignment.log",
    benchmark:
        "logs/benchmarks/plot_competence_alignment/{dataset}/competence_alignment.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        metric=PROBES.get("alignment", {}).get("metric"),
        layers=PROBES.get("alignment", {}).get("layers"),
        bins=PROBES.get("alignment", {}).get("bins"),
        models=RUNNABLE_VISION,
    script:
        "../scripts/probes/plot_competence_alignment.py"


rule plot_model_umap:
    """Fig. 2 (right): UMAP of the vision models under the distance -log(alignment)."""
    input:
        unpack(fig2_inputs),
        code=library_of("probes/plot_model_umap.py"),
    output:
        report(
            "results/figures/{dataset}/model_umap.png",
            caption="../report/model_umap.rst",
            category="Competence",
            subcategory="{dataset}",
            labels={"figure": "UMAP of models (Fig. 2 right)"},
        ),
    log:
        "logs/plots/{dataset}/model_umap.log",
    benchmark:
        "logs/benchmarks/plot_model_umap/{dataset}/model_umap.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        metric=PROBES.get("alignment", {}).get("metric"),
        neighbors=PROBES.get("alignment", {}).get("umap_neighbors"),
        seed=PROBES.get("alignment", {}).get("seed"),
        models=RUNNABLE_VISION,
    script:
        "../scripts/probes/plot_model_umap.py"
