rule trends:
    """Spearman trends over models (Fig. 2, Fig. 3, alignment to the world) with permutation p-values and
    bootstrap intervals, for every metric, raw and calibrated."""
    input:
        unpack(trend_inputs),
        code=library_of("trends/trends.py"),
    output:
        trends="results/trends/{dataset}.parquet",
        controls="results/trends/{dataset}_controls.parquet",
    log:
        "logs/plots/{dataset}/trends.log",
    benchmark:
        "logs/benchmarks/trends/{dataset}/trends.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        layers=PROBES.get("alignment", {}).get("layers", "last"),
        seed=PROBES.get("alignment", {}).get("seed", 0),
        controls=CONTROLS,
        corpus=LM_SCORE["corpus"],
        metric=TREND_METRIC,
        alpha=ALIGNMENT["null_distribution"]["alpha"],
    script:
        "../scripts/trends/trends.py"


rule plot_trend_calibration:
    """Does calibration change the story? Each trend's Spearman ρ over models, raw against calibrated, per
    metric."""
    input:
        trends="results/trends/{dataset}.parquet",
        code=library_of("trends/plot_trend_calibration.py"),
    output:
        report(
            "results/figures/{dataset}/trend_calibration.png",
            caption="../report/trend_calibration.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "trends, raw against calibrated"},
        ),
    log:
        "logs/plots/{dataset}/trend_calibration.log",
    benchmark:
        "logs/benchmarks/plot_trend_calibration/{dataset}/trend_calibration.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/trends/plot_trend_calibration.py"


rule plot_world_alignment:
    input:
        trends="results/trends/{dataset}.parquet",
        code=library_of("trends/plot_world_alignment.py"),
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
        "../scripts/trends/plot_world_alignment.py"


rule plot_alignment_versus_lm_score:
    input:
        alignment="results/alignment/{dataset}/alignment.nc",
        trends="results/trends/{dataset}.parquet",
        controls="results/trends/{dataset}_controls.parquet",
        code=library_of("trends/plot_alignment_versus_lm_score.py"),
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
        "../scripts/trends/plot_alignment_versus_lm_score.py"
