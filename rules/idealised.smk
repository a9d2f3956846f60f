include: "inputs/idealised.smk"


rule idealised_world:
    """The idealised world of Section 4 and App. F: K_PMI of a Markov chain, InfoNCE learners of two
    bijective codes and a lossy one, their alignment to K_PMI and to each other."""
    input:
        code=library_of("idealised/world.py"),
    output:
        table="results/idealised/world.parquet",
        facts="results/idealised/world.json",
    log:
        "logs/idealised/world.log",
    benchmark:
        "logs/benchmarks/idealised_world/world.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        world={k: v for k, v in IDEALISED.items() if k != "enabled"},
    script:
        "../scripts/idealised/world.py"


rule plot_idealised_world:
    input:
        table="results/idealised/world.parquet",
        facts="results/idealised/world.json",
        code=library_of("idealised/plot_idealised_world.py"),
    output:
        report(
            "results/figures/idealised_world.png",
            caption="../report/idealised_world.rst",
            category="The idealised world",
            labels={"figure": "contrastive learners converge to K_PMI (Section 4)"},
        ),
    log:
        "logs/plots/idealised_world.log",
    benchmark:
        "logs/benchmarks/plot_idealised_world/idealised_world.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/idealised/plot_idealised_world.py"
