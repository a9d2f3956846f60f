"""The workflow on a real SLURM: a single-node cluster on localhost (tests/slurm/cluster.sh), the tiny
config's data, embeddings and alignment through `snakemake --profile profiles/slurm`, outputs identical to the
local run's."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO, digests, tiny_config, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
# The alignment branch: data, every model's embedding and state, the grouped pairs, the aggregate. Each SLURM
# job starts a whole Snakemake (about 10 s here), so probes and figures are left to the local tests.
TARGETS = ("results/alignment/tiny/alignment.nc",)
KEPT = ["data/tiny", "results/features/tiny", "results/states", "results/alignment/tiny/alignment.nc"]
KEPT += ["results/alignment/tiny/pairs"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    started = subprocess.run([str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    if started.returncode == 3:
        pytest.skip(started.stderr.strip())
    assert started.returncode == 0, started.stdout + started.stderr
    yield state
    subprocess.run([str(CLUSTER), "stop", str(state)], check=True)
    assert not any((state / f"{daemon}.pid").exists() for daemon in ("slurmctld", "slurmd"))


def test_tiny_workflow_runs_through_slurm_and_matches_the_local_run(cluster, tiny_run, tmp_path):
    write_config(tmp_path, tiny_config())
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    # The test node has the machine's CPUs (2 here): grouped jobs may use 2 at once, not the profile's 4.
    cmd += ["--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4", "--cores", "2"]
    cmd += ["--slurm-keep-successful-logs", "--seconds-between-status-checks", "2"]  # a local, idle cluster
    cmd += TARGETS
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]

    # Every job went through SLURM: snakemake's submissions, the controller's allocations, SLURM's job logs.
    submitted = set(re.findall(r"SLURM jobid (\d+)", log))
    assert len(submitted) >= 10, log[-3000:]
    completed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", (cluster / "slurmctld.log").read_text()))
    assert submitted <= completed
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs"
    logged = {folder.name: list(folder.rglob("*.log")) for folder in slurm_logs.iterdir()}
    expected = {"rule_dataset", "rule_embed", "rule_alignment_state", "rule_aggregate_alignment"}
    assert expected | {"group_pairs_align_pair"} <= set(logged)
    assert len(logged["rule_embed"]) == 4  # 4 models on the dataset
    assert len(logged["rule_alignment_state"]) == 4
    # The six model pairs went to SLURM as one grouped job, not six.
    assert len(logged["group_pairs_align_pair"]) == 1
    assert {p.stem for files in logged.values() for p in files} <= completed

    for path in KEPT:
        assert digests(tmp_path / path) == digests(tiny_run / path), path
