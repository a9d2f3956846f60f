include: "inputs/colour.smk"


rule colour_sentences:
    """A colour set's words in the paper's three template sentences: a text set the language models embed."""
    input:
        code=library_of("colour/sentences.py"),
    output:
        samples="data/texts/colours/{colour_set}/samples.parquet",
        record="data/texts/colours/{colour_set}/dataset.json",
    log:
        "logs/colours/{colour_set}/sentences.log",
    benchmark:
        "logs/benchmarks/colour_sentences/{colour_set}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        colours=lambda wildcards: COLOUR["sets"][wildcards.colour_set],
    script:
        "../scripts/colour/sentences.py"


rule colour_cooccurrence:
    """Counts of quantised colours of pixel pairs at most `radius` apart over natural images (once per run)."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("colour/images"),
        code=library_of("colour/cooccurrence.py"),
    output:
        "results/colours/cooccurrence.nc",
    log:
        "logs/colours/cooccurrence.log",
    benchmark:
        "logs/benchmarks/colour_cooccurrence/cooccurrence.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        **settings_of("prh/experiments/colour/analysis.py:cooccurrence_table", COLOUR),
    script:
        "../scripts/colour/cooccurrence.py"


rule colour_analysis:
    """Fig. 8's numbers for one colour set: MDS to 3-D, Kabsch-Umeyama onto CIELAB, disparity and RSA."""
    input:
        cooccurrence="results/colours/cooccurrence.nc",
        record="data/texts/colours/{colour_set}/dataset.json",
        language=lambda wildcards: [
            f"results/texts/colours/{wildcards.colour_set}/{m}.zarr"
            for m in COLOUR_LANGUAGE
        ],
        code=library_of("colour/analysis.py"),
    output:
        table="results/colours/{colour_set}/scores.parquet",
        points="results/colours/{colour_set}/points.nc",
    log:
        "logs/colours/{colour_set}/analysis.log",
    benchmark:
        "logs/benchmarks/colour_analysis/{colour_set}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        # colour.language may be empty (every language model): the models are COLOUR_LANGUAGE
        **settings_of("prh/experiments/colour/analysis.py:colour_set_analysis", COLOUR)
        | {"language": COLOUR_LANGUAGE},
    script:
        "../scripts/colour/analysis.py"


rule plot_colours:
    """Fig. 8: each representation's colours in CIELAB after MDS and the Kabsch-Umeyama fit."""
    input:
        table="results/colours/{colour_set}/scores.parquet",
        points="results/colours/{colour_set}/points.nc",
        code=library_of("colour/plot_colours.py"),
    output:
        report(
            "results/figures/colours_{colour_set}.png",
            caption="../report/colours.rst",
            category="Colour (Fig. 8)",
            labels={"colour set": "{colour_set}"},
        ),
    log:
        "logs/plots/colours_{colour_set}.log",
    benchmark:
        "logs/benchmarks/plot_colours/colours_{colour_set}.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/colour/plot_colours.py"
