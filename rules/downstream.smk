DOWNSTREAM = config["downstream"]


rule downstream_task:
    """One multiple-choice task's items (context, endings, label), generated or read."""
    input:
        code=library_of("downstream_task.py"),
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
        "../scripts/downstream_task.py"


rule downstream_score:
    """One language model's accuracy on one task by log-likelihood (encoders: not applicable)."""
    input:
        task="data/downstream/{mc_task}.parquet",
        checkpoint=checkpoint_of,
        code=library_of("downstream_score.py"),
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
        mem_mb=6000,
        gpu=config["embedding"]["gpus"],
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        device=config["embedding"]["device"],
    script:
        "../scripts/downstream_score.py"


rule plot_downstream:
    """Fig. 4: alignment to the reference vision model against downstream accuracy."""
    input:
        scores=lambda wildcards: [
            f"results/downstream/{wildcards.mc_task}/{m}.parquet"
            for m in LANGUAGE_MODELS
        ],
        alignment=f"results/alignment/{DOWNSTREAM['dataset']}/alignment.nc",
        lm_scores="results/lm_scores.parquet",
        code=library_of("plot_downstream.py"),
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
        "logs/benchmarks/plots/downstream_{mc_task}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        reference=DOWNSTREAM["reference"],
        metric=DOWNSTREAM["metric"],
        accuracy=DOWNSTREAM["accuracy"],
    script:
        "../scripts/plot_downstream.py"
