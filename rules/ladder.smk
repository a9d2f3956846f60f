include: "inputs/ladder.smk"


rule training_scenes:
    """The training set of the ladder: shapes-world scenes from a random stream no evaluation set uses."""
    input:
        code=library_of("ladder/training_scenes.py"),
    output:
        images=directory("data/training/images.zarr"),
        samples="data/training/samples.parquet",
        record="data/training/dataset.json",
    log:
        "logs/data/training.log",
    benchmark:
        "logs/benchmarks/training_scenes/training.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        scenes=TRAINING.get("scenes"),
    script:
        "../scripts/ladder/training_scenes.py"


rule train_vision:
    """One vision run of the ladder: a timm ResNet with one head per scene attribute of its task set;
    a checkpoint at every step of training.vision.checkpoints, and its curves."""
    input:
        images="data/training/images.zarr",
        samples="data/training/samples.parquet",
        record="data/training/dataset.json",
        code=library_of("ladder/train_vision.py"),
    output:
        checkpoints=[
            directory(f"results/checkpoints/{{run}}/step-{step}")
            for step in TRAINING.get("vision", {}).get("checkpoints", [])
        ],
        curves="results/training/{run}.parquet",
    log:
        "logs/train/{run}.log",
    benchmark:
        "logs/benchmarks/train_vision/{run}.tsv"
    wildcard_constraints:
        run=runs_of("vision"),
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        mem_mb=4000,
    params:
        run=run_params,
    script:
        "../scripts/ladder/train_vision.py"


rule train_language:
    """One language run of the ladder: a GPT-2 trained by next-token prediction on the training captions;
    a checkpoint (model and tokenizer) at every step of training.language.checkpoints, and its curves.
    """
    input:
        samples="data/training/samples.parquet",
        record="data/training/dataset.json",
        code=library_of("ladder/train_language.py"),
    output:
        checkpoints=[
            directory(f"results/checkpoints/{{run}}/step-{step}")
            for step in TRAINING.get("language", {}).get("checkpoints", [])
        ],
        curves="results/training/{run}.parquet",
    log:
        "logs/train/{run}.log",
    benchmark:
        "logs/benchmarks/train_language/{run}.tsv"
    wildcard_constraints:
        run=runs_of("language"),
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        mem_mb=4000,
    params:
        run=run_params,
    script:
        "../scripts/ladder/train_language.py"


rule train_encoder:
    """One caption encoder of the ladder (the positive control): the GPT-2 body whose masked token mean
    regresses each training scene's Z from its caption; a checkpoint at every step of
    training.encoder.checkpoints, and its curves."""
    input:
        samples="data/training/samples.parquet",
        record="data/training/dataset.json",
        code=library_of("ladder/train_encoder.py"),
    output:
        checkpoints=[
            directory(f"results/checkpoints/{{run}}/step-{step}")
            for step in TRAINING.get("encoder", {}).get("checkpoints", [])
        ],
        curves="results/training/{run}.parquet",
    log:
        "logs/train/{run}.log",
    benchmark:
        "logs/benchmarks/train_encoder/{run}.tsv"
    wildcard_constraints:
        run=runs_of("encoder"),
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        mem_mb=4000,
    params:
        run=run_params,
    script:
        "../scripts/ladder/train_encoder.py"


rule plot_training_curves:
    input:
        curves=[f"results/training/{run}.parquet" for run in LADDER.runs],
        code=library_of("ladder/plot_training_curves.py"),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Ladder",
            labels={"figure": "training curves"},
        ),
    log:
        "logs/plots/training_curves.log",
    benchmark:
        "logs/benchmarks/plot_training_curves/training_curves.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        runs=list(LADDER.runs),
    script:
        "../scripts/ladder/plot_training_curves.py"


rule plot_family:
    """One factor of the ladder (width, task set or training step): alignment among the family's models, to
    the world and to the other modality, per level."""
    input:
        alignment="results/alignment/{dataset}/alignment.nc",
        code=library_of("ladder/plot_family.py"),
    output:
        table="results/families/{dataset}/{family}.parquet",
        figure=report(
            "results/figures/{dataset}/family_{family}.png",
            caption="../report/family.rst",
            category="Ladder",
            subcategory="{dataset}",
            labels={"figure": "family {family}"},
        ),
    log:
        "logs/plots/{dataset}/family_{family}.log",
    benchmark:
        "logs/benchmarks/plot_family/{dataset}/{family}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        members=family_members,
        factors=lambda wildcards: LADDER.family_factor(wildcards.family),
        metric=TREND_METRIC,
    script:
        "../scripts/ladder/plot_family.py"
