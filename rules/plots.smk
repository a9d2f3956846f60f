rule plot_best_alignment:
    input:
        "results/alignment/{dataset}/{metric}.nc",
    output:
        report(
            "results/figures/{dataset}/{metric}/best_alignment.png",
            caption="../report/best_alignment.rst",
            category="Alignment",
            subcategory="{dataset}",
            labels={"figure": "best over layers", "metric": "{metric}"},
        ),
    log:
        "logs/plots/{dataset}/{metric}/best_alignment.log",
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/plot_best_alignment.py"


rule plot_layer_matrix:
    input:
        "results/alignment/{dataset}/pairs/{model_x}/{model_y}.nc",
    output:
        report(
            "results/figures/{dataset}/{metric}/layers/{model_x}/{model_y}.png",
            caption="../report/layer_matrix.rst",
            category="Layer × layer",
            subcategory="{dataset}",
            labels={"pair": "{model_x} vs {model_y}", "metric": "{metric}"},
        ),
    log:
        "logs/plots/{dataset}/{metric}/layers/{model_x}/{model_y}.log",
    conda:
        "../envs/prh.yaml"
    params:
        # The vision model goes on the rows.
        rows=lambda wildcards: (
            "x" if MODELS[wildcards.model_x]["modality"] == "vision" else "y"
        ),
    script:
        "../scripts/plot_layer_matrix.py"
