"""Measure representational convergence between neural networks (Huh et al., ICML 2024).

datasets -> per-layer embeddings (Zarr) -> pairwise alignment (xarray) -> linear probes
(competence) and language-model scores -> figures.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/preflight.smk"
include: "rules/fetch.smk"
include: "rules/data.smk"
include: "rules/ladder.smk"
include: "rules/embed.smk"
include: "rules/precomputed.smk"
include: "rules/alignment.smk"
include: "rules/lm_score.smk"
include: "rules/probes.smk"
include: "rules/trends.smk"
include: "rules/idealised.smk"
include: "rules/downstream.smk"
include: "rules/density.smk"
include: "rules/colour.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
