rule trends:
    """Spearman trends over models (Fig. 2, Fig. 3, alignment to the world) with permutation p-values and
    bootstrap intervals, for every metric, raw and calibrated."""
    input:
        unpack(trend_inputs),
        code=library_of("trends.py"),
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
        "../scripts/trends.py"


rule plot_trend_calibration:
    """Does calibration change the story? Each trend's Spearman ρ over models, raw against calibrated, per
    metric."""
    input:
        trends="results/trends/{dataset}.parquet",
        code=library_of("plot_trend_calibration.py"),
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
        "../scripts/plot_trend_calibration.py"
