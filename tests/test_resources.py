"""Cluster resources from a model's size (prh/resources.py), against hand computation, and the paper preset's
model jobs sized by them in a dry run under profiles/slurm."""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest
from conftest import REPO, snakemake

from prh.resources import gpus_needed, model_job, state_mem_mb, store_state_mem_mb


@pytest.mark.parametrize(
    ("parameters", "dtype", "gpus", "mem_mb"),
    [
        (0.5e9, "float32", 1, 8000 + 2000),  # 2 GB of float32 weights: one GPU; the host holds them all once
        (13e9, "bfloat16", 1, 8000 + 10000),  # 26 GB x 1.2 fits one 80 GB GPU; the host holds a shard at a time
        (70e9, "bfloat16", 2, 8000 + 10000),  # 140 GB x 1.2 = 168 GB: three 80 GB GPUs
    ],
)
def test_model_jobs_are_sized_from_their_parameters(parameters, dtype, gpus, mem_mb):
    job = model_job(parameters, dtype, tokens=4e6, gpus=1, gpu_memory_gb=80)
    weights = parameters * {"float32": 4, "bfloat16": 2}[dtype]
    assert job["gpu"] == math.ceil(weights * 1.2 / 80e9) == (3 if parameters == 70e9 else 1)
    assert job["gpu"] >= gpus and job["mem_mb"] == mem_mb
    assert job["runtime"] == 30 + math.ceil(2 * parameters * 4e6 / 25e12 / 60)
    on_cpu = model_job(parameters, dtype, tokens=4e6, gpus=0, gpu_memory_gb=80)  # no GPUs: weights in host memory
    assert on_cpu["gpu"] == 0 and on_cpu["mem_mb"] == 8000 + math.ceil(weights * 1.2 / 1e6)


def test_gpus_needed_is_the_fewest_that_hold_the_weights():
    assert gpus_needed(int(66.6e9), 80) == 1 and gpus_needed(int(66.7e9), 80) == 2  # 66.7 x 1.2 > 80


def test_state_memory_follows_the_features_store(tmp_path):
    import zarr

    store = zarr.open_group(str(tmp_path / "m.zarr"), mode="w")
    store.create_array("features", shape=(81, 1024, 8192), chunks=(1, 256, 8192), dtype=np.float16)
    assert (
        store_state_mem_mb(tmp_path / "m.zarr")
        == state_mem_mb(81, 8192, 1024)
        == 2000 + math.ceil(3 * 81 * 8192 * 1024 * 8 / 1e6)
    )
    with pytest.raises(FileNotFoundError) as missing:  # Snakemake sizes the job once the store exists
        store_state_mem_mb(tmp_path / "later.zarr")
    assert missing.value.filename == str(tmp_path / "later.zarr")


def _jobs(out: str) -> list[dict]:
    jobs = []
    for block in re.split(r"\n(?=[ \t]*(?:\[[^\]]+\]\n|rule |localrule ))", out):  # grouped jobs are indented
        rule = re.search(r"^\s*(?:local)?rule (\w+):", block, re.M)
        if not rule:
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
        resources = dict(re.findall(r"(\w+)=([^,]+)", fields.get("resources", "")))
        jobs.append({"rule": rule.group(1), "wildcards": fields.get("wildcards", ""), "input": fields.get("input", ""),
                     "resources": resources})  # fmt: skip
    return jobs


def test_paper_preset_under_slurm_sizes_every_model_job_and_preflight_comes_first(tmp_path):
    """A dry run of configs/paper.yaml under profiles/slurm: preflight is planned and every job that reads the
    hub waits for it; a 0.5B, a 13B and a 70B model's jobs ask for what their sizes need."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    args = ("--configfile", str(REPO / "configs" / "paper.yaml"), "--profile", str(REPO / "profiles" / "slurm"))
    jobs = _jobs(snakemake(tmp_path, *args, "--dry-run").stdout)
    assert [j["rule"] for j in jobs].count("preflight") == 1
    hub_rules = {"dataset", "probe_task", "embed", "embed_texts", "embed_probe_tasks", "lm_corpus", "lm_score",
                 "downstream_task", "downstream_score", "colour_cooccurrence"}  # fmt: skip
    for job in jobs:
        if job["rule"] in hub_rules:
            assert "results/preflight.json" in job["input"], job
    lm = {j["wildcards"].removeprefix("model="): j["resources"] for j in jobs if j["rule"] == "lm_score"}
    assert (lm["bloomz-560m"]["gpu"], lm["bloomz-560m"]["mem_mb"]) == ("1", "10237")  # float32 compute: 2.2 GB
    assert (lm["llama-13b"]["gpu"], lm["llama-13b"]["mem_mb"]) == ("1", "18000")
    assert (lm["meta-llama-3-70b"]["gpu"], lm["meta-llama-3-70b"]["mem_mb"]) == ("3", "18000")
    assert int(lm["meta-llama-3-70b"]["runtime"]) > int(lm["llama-13b"]["runtime"]) > int(lm["bloomz-560m"]["runtime"])
    embeds = [j for j in jobs if j["rule"] == "embed" and "meta-llama-3-70b" in j["wildcards"]]
    assert embeds and all(j["resources"]["gpu"] == "3" for j in embeds)
