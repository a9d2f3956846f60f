rule plot_alignment_summary:
    """Best-layer alignment of every model pair, agreement between metrics, cross-modal scores per metric."""
    input:
        "results/alignment/{dataset}/alignment.nc",
        code=library_of("plot_alignment_summary.py"),
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
        "../scripts/plot_alignment_summary.py"


rule plot_metric_variants:
    input:
        "results/alignment/{dataset}/metric_variants.nc",
        code=library_of("plot_metric_variants.py"),
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
        "../scripts/plot_metric_variants.py"


rule plot_cross_modal_metrics:
    input:
        "results/alignment/{dataset}/alignment.nc",
        code=library_of("plot_cross_modal_metrics.py"),
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
        "../scripts/plot_cross_modal_metrics.py"


rule plot_cknna_versus_k:
    input:
        "results/alignment/{dataset}/cknna_versus_k.nc",
        code=library_of("plot_cknna_versus_k.py"),
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
        "../scripts/plot_cknna_versus_k.py"


rule plot_layer_matrices:
    """Layer x layer scores of one vision-language pair, one panel per metric."""
    input:
        "results/alignment/{dataset}/pairs/{model_x}/{model_y}.nc",
        code=library_of("plot_layer_matrices.py"),
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
        "../scripts/plot_layer_matrices.py"


rule plot_world_alignment:
    input:
        trends="results/trends/{dataset}.parquet",
        code=library_of("plot_world_alignment.py"),
    output:
        report(
            "results/figures/{dataset}/world_alignment.png",
            caption="../report/world_alignment.rst",
            category="Ladder",
            subcategory="{dataset}",
            labels={"figure": "alignment to the world Z"},
        ),
    log:
        "logs/plots/{dataset}/world_alignment.log",
    benchmark:
        "logs/benchmarks/plot_world_alignment/{dataset}/world_alignment.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        metric=TREND_METRIC,
    script:
        "../scripts/plot_world_alignment.py"


rule plot_family:
    """One factor of the ladder (width, task set or training step): alignment among the family's models, to
    the world and to the other modality, per level."""
    input:
        alignment="results/alignment/{dataset}/alignment.nc",
        code=library_of("plot_family.py"),
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
        "../scripts/plot_family.py"


rule plot_alignment_versus_lm_score:
    input:
        alignment="results/alignment/{dataset}/alignment.nc",
        trends="results/trends/{dataset}.parquet",
        controls="results/trends/{dataset}_controls.parquet",
        code=library_of("plot_alignment_versus_lm_score.py"),
    output:
        report(
            "results/figures/{dataset}/alignment_versus_lm_score.png",
            caption="../report/alignment_versus_lm_score.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "alignment against language-model score (Fig. 3)"},
        ),
    log:
        "logs/plots/{dataset}/alignment_versus_lm_score.log",
    benchmark:
        "logs/benchmarks/plot_alignment_versus_lm_score/{dataset}/alignment_versus_lm_score.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        metric=TREND_METRIC,
        families=LADDER.lines("language"),
        corpus=LM_SCORE["corpus"],
    script:
        "../scripts/plot_alignment_versus_lm_score.py"
