"""The workflow on a real SLURM: a single-node cluster on localhost (tests/slurm/cluster.sh), the tiny
config's data, embeddings and alignment through `snakemake --profile profiles/slurm`, outputs identical to the
local run's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import digests

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
KEPT = ["data/tiny", "results/features/tiny", "results/states", "results/alignment/tiny/alignment.nc"]
KEPT += ["results/alignment/tiny/pairs"]


@pytest.fixture(scope="module")
def slurm_run(_background_runs) -> tuple[Path, Path, str]:
    """The SLURM run that conftest started with the session: (working directory, cluster state folder, log)."""
    state, started = _background_runs["slurm_cluster"]
    if started.returncode == 3:
        pytest.skip(started.stderr.strip())
    assert started.returncode == 0, started.stdout + started.stderr
    workdir = _background_runs["slurm"].wait()
    return workdir, state, (workdir / "background.log").read_text()


def test_tiny_workflow_runs_through_slurm_and_matches_the_local_run(slurm_run, tiny_run):
    workdir, cluster, log = slurm_run
    # Every job went through SLURM: snakemake's submissions, the controller's allocations, SLURM's job logs.
    submitted = set(re.findall(r"SLURM jobid (\d+)", log))
    assert len(submitted) >= 10, log[-3000:]
    completed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", (cluster / "slurmctld.log").read_text()))
    assert submitted <= completed
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    logged = {folder.name: list(folder.rglob("*.log")) for folder in slurm_logs.iterdir()}
    expected = {"rule_dataset", "rule_embed", "rule_alignment_state", "rule_aggregate_alignment"}
    assert expected | {"group_pairs_align_pair"} <= set(logged)
    assert len(logged["rule_embed"]) == 4  # 4 models on the dataset
    assert len(logged["rule_alignment_state"]) == 4
    # The six model pairs went to SLURM as one grouped job, not six.
    assert len(logged["group_pairs_align_pair"]) == 1
    assert {p.stem for files in logged.values() for p in files} <= completed

    for path in KEPT:
        assert digests(workdir / path) == digests(tiny_run / path), path
