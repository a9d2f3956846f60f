ALIGNMENT = config["alignment"]


rule alignment_state:
    """What every metric needs from one model alone, computed once: prepared layers' neighbour lists, the
    kernel at the neighbours, Gram matrices and SVD directions, as each configured metric needs.
    """
    input:
        features="results/features/{dataset}/{model}.zarr",
        code=library_of("alignment/state.py"),
    output:
        directory("results/states/{dataset}/{model}.zarr"),
    log:
        "logs/states/{dataset}/{model}.log",
    benchmark:
        "logs/benchmarks/alignment_state/{dataset}/{model}.tsv"
    conda:
        "../envs/prh.yaml"
    resources:
        # layers x width x N of the features store (sized once the store is written)
        mem_mb=lambda wildcards, input: store_state_mem_mb(input.features),
    params:
        # the settings compute_state takes (the neighbour lists reach as deep as the pair jobs' resamples need);
        # Z is not an activation with outliers, and most of its entries are 0: no clamp for the world.
        **settings_of("prh/alignment/states.py:compute_state", ALIGNMENT)
        | {
            "quantile": lambda wildcards: (
                1.0 if wildcards.model == WORLD else ALIGNMENT["quantile"]
            )
        },
    script:
        "../scripts/alignment/state.py"


rule align_pair:
    """Every layer of one model against every layer of another from their two states: cross terms only,
    for each configured metric, with the permutation null and the half-sample interval of the best score
    (the layer pair chosen again in each resample).
    """
    input:
        x="results/states/{dataset}/{model_x}.zarr",
        y="results/states/{dataset}/{model_y}.zarr",
        x_features="results/features/{dataset}/{model_x}.zarr",
        y_features="results/features/{dataset}/{model_y}.zarr",
        record="data/{dataset}/dataset.json",
        code=library_of("alignment/pair.py"),
    output:
        "results/alignment/{dataset}/pairs/{model_x}/{model_y}.nc",
    log:
        "logs/align/{dataset}/{model_x}/{model_y}.log",
    benchmark:
        "logs/benchmarks/align_pair/{dataset}/{model_x}/{model_y}.tsv"
    conda:
        "../envs/prh.yaml"
    resources:
        mem_mb=4000,
    params:
        **settings_of("prh/alignment/pairs.py:pair_scores", ALIGNMENT),
    script:
        "../scripts/alignment/pair.py"


rule aggregate_alignment:
    """One Dataset over all model pairs and metrics: (metric, model_x, model_y, layer_x, layer_y) plus
    best scores, null statistics and intervals."""
    input:
        pairs=pair_files,
        code=library_of("alignment/aggregate.py"),
    output:
        "results/alignment/{dataset}/alignment.nc",
    log:
        "logs/align/{dataset}/aggregate.log",
    benchmark:
        "logs/benchmarks/aggregate_alignment/{dataset}/aggregate.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        models=dataset_models,
    script:
        "../scripts/alignment/aggregate.py"


rule cknna_versus_k:
    """Best CKNNA over layer pairs of every vision-language pair, for each neighbourhood size k (Fig. 10)."""
    input:
        stores=lambda wildcards: [
            f"results/features/{wildcards.dataset}/{m['name']}.zarr"
            for m in packaged_models(wildcards)
        ],
        code=library_of("alignment/cknna_versus_k.py"),
    output:
        "results/alignment/{dataset}/cknna_versus_k.nc",
    log:
        "logs/align/{dataset}/cknna_versus_k.log",
    benchmark:
        "logs/benchmarks/cknna_versus_k/{dataset}/cknna_versus_k.tsv"
    conda:
        "../envs/prh.yaml"
    resources:
        mem_mb=6000,
    params:
        **settings_of(
            "prh/alignment/variants.py:cknna_versus_k", config["figures"], ALIGNMENT
        ),
        models=packaged_models,
    script:
        "../scripts/alignment/cknna_versus_k.py"


rule metric_variants:
    """Fig. 12 over hyperparameters: every metric at each k and sample size, on the vision models' last layers."""
    input:
        stores=lambda wildcards: [
            f"results/features/{wildcards.dataset}/{m}.zarr"
            for m in dataset_vision_models(wildcards.dataset)
        ],
        code=library_of("alignment/metric_variants.py"),
    output:
        "results/alignment/{dataset}/metric_variants.nc",
    log:
        "logs/align/{dataset}/metric_variants.log",
    benchmark:
        "logs/benchmarks/metric_variants/{dataset}/metric_variants.tsv"
    conda:
        "../envs/prh.yaml"
    resources:
        mem_mb=4000,
    params:
        **settings_of(
            "prh/alignment/variants.py:metric_variants",
            config["figures"]["agreement"],
            ALIGNMENT,
        ),
        models=lambda wildcards: dataset_vision_models(wildcards.dataset),
        # k, bsz (the job drops sizes above N and adds N) and seed of figures.agreement
    script:
        "../scripts/alignment/metric_variants.py"


rule plot_alignment_summary:
    """Best-layer alignment of every model pair, agreement between metrics, cross-modal scores per metric."""
    input:
        "results/alignment/{dataset}/alignment.nc",
        code=library_of("alignment/plot_alignment_summary.py"),
    output:
        best=report(
            "results/figures/{dataset}/best_alignment.png",
            caption="../report/best_alignment.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "best over layer pairs"},
        ),
        agreement=report(
            "results/figures/{dataset}/metric_agreement.png",
            caption="../report/metric_agreement.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "metric agreement (Fig. 12)"},
        ),
    log:
        "logs/plots/{dataset}/alignment_summary.log",
    benchmark:
        "logs/benchmarks/plot_alignment_summary/{dataset}/alignment_summary.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/alignment/plot_alignment_summary.py"


rule plot_metric_variants:
    input:
        "results/alignment/{dataset}/metric_variants.nc",
        code=library_of("alignment/plot_metric_variants.py"),
    output:
        report(
            "results/figures/{dataset}/metric_variants.png",
            caption="../report/metric_variants.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "metric agreement over k and bsz (Fig. 12)"},
        ),
    log:
        "logs/plots/{dataset}/metric_variants.log",
    benchmark:
        "logs/benchmarks/plot_metric_variants/{dataset}/metric_variants.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/alignment/plot_metric_variants.py"


rule plot_cross_modal_metrics:
    input:
        "results/alignment/{dataset}/alignment.nc",
        code=library_of("alignment/plot_cross_modal_metrics.py"),
    output:
        report(
            "results/figures/{dataset}/cross_modal_metrics.png",
            caption="../report/cross_modal_metrics.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "cross-modal alignment per metric (Fig. 13-14)"},
        ),
    log:
        "logs/plots/{dataset}/cross_modal_metrics.log",
    benchmark:
        "logs/benchmarks/plot_cross_modal_metrics/{dataset}/cross_modal_metrics.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/alignment/plot_cross_modal_metrics.py"


rule plot_cknna_versus_k:
    input:
        "results/alignment/{dataset}/cknna_versus_k.nc",
        code=library_of("alignment/plot_cknna_versus_k.py"),
    output:
        report(
            "results/figures/{dataset}/cknna_versus_k.png",
            caption="../report/cknna_versus_k.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "CKNNA versus k (Fig. 10)"},
        ),
    log:
        "logs/plots/{dataset}/cknna_versus_k.log",
    benchmark:
        "logs/benchmarks/plot_cknna_versus_k/{dataset}/cknna_versus_k.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/alignment/plot_cknna_versus_k.py"


rule plot_layer_matrices:
    """Layer x layer scores of one vision-language pair, one panel per metric."""
    input:
        "results/alignment/{dataset}/pairs/{model_x}/{model_y}.nc",
        code=library_of("alignment/plot_layer_matrices.py"),
    output:
        report(
            "results/figures/{dataset}/layers/{model_x}/{model_y}.png",
            caption="../report/layer_matrix.rst",
            category="Layer x layer",
            subcategory="{dataset}",
            labels={"pair": "{model_x} vs {model_y}"},
        ),
    log:
        "logs/plots/{dataset}/layers/{model_x}/{model_y}.log",
    benchmark:
        "logs/benchmarks/plot_layer_matrices/{dataset}/layers/{model_x}/{model_y}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        # The vision model goes on the rows.
        rows=lambda wildcards: (
            "x" if MODELS[wildcards.model_x]["modality"] == "vision" else "y"
        ),
    script:
        "../scripts/alignment/plot_layer_matrices.py"
