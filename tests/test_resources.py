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
    from prh.resources import dry_run_jobs

    return dry_run_jobs(out)


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
    # Every GPU job waits for the fetch job of the weights it reads: none downloads on a compute node.
    gpu_jobs = [j for j in jobs if j["resources"].get("gpu", "0") != "0"]
    assert len(gpu_jobs) > 250
    for job in gpu_jobs:
        model = re.search(r"(?:model|summariser)=([^,]+)", job["wildcards"]).group(1)
        target = "density/summaries/model" if job["rule"] == "density_summaries" else f"models/{model}"
        assert f"results/fetch/{target}.json" in job["input"], job
    # docs/paper.md's cost table is this dry run's: what the scheduler is asked to reserve cannot drift.
    from prh.resources import reservation_table

    assert reservation_table(jobs) in (REPO / "docs" / "paper.md").read_text()
    fetched = {j["wildcards"].removeprefix("target=") for j in jobs if j["rule"] == "fetch"}
    assert {"datasets/wit1024", "datasets/places365", "probes/tasks/sun397", "lm_score/corpus_hub"} <= fetched


class _Job:
    """What snakemake-executor-plugin-slurm reads of a job to build its sbatch call: resources and threads."""

    class Resources(dict):
        __getattr__ = dict.__getitem__

    def __init__(self, job: dict):
        self.threads = job["threads"]
        self.resources = self.Resources(
            {k: int(v) if v.isdigit() else v for k, v in job["resources"].items() if "<TBD>" not in v}
        )


def _sbatch(job: dict) -> str:
    """The sbatch call the SLURM plugin submits for a dry-run job, built by the plugin's own functions."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    fake = _Job(job)
    partition = f" -p {fake.resources['slurm_partition']}"
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": job["rule"], "account": "",
              "partition": partition, "workdir": None}  # fmt: skip
    return get_submit_command(fake, params) + set_gres_string(fake)


@pytest.mark.parametrize("gpu_memory_gb", [40, 80])
def test_sbatch_flags_of_each_kind_of_job_under_40_and_80_gb_gpus(gpu_memory_gb, tmp_path):
    """A dry run under profiles/slurm with a GPU partition, GPU type and constraint configured: a 125M, a 30B
    and a 70B model's embedding and scoring jobs ask for the GPUs their bfloat16 weights (and a scoring job's
    float32 logits) need on cards of ``gpu_memory_gb``, on one node, in the GPU partition, with the config's
    threads; jobs without a GPU go to the CPU partition; fetch jobs to the transfer partition where one is named
    (else they are local rules of the submitting host)."""
    from conftest import tiny_config, write_config

    config = tiny_config()
    sizes = {"lm-125m": 125e6, "lm-30b": 32.5e9, "lm-70b": 70.6e9}
    config["models"] += [{"name": name, "modality": "language", "source": "huggingface", "id": f"org/{name}",
                          "params": n, "compute_dtype": "bfloat16"} for name, n in sizes.items()]  # fmt: skip
    config["embedding"] = {"threads": 8, "gpus": 1, "gpu_memory_gb": gpu_memory_gb}
    config["cluster"] = {"gpu_partition": "gpu", "cpu_partition": "cpu", "gpu_model": "a100", "constraint": "nvlink"}
    if gpu_memory_gb == 40:  # fetch jobs in a transfer partition, not on the submitting host
        config["cluster"]["transfer_partition"] = "transfer"
    config["lm_score"] = {"corpus": "pydoc", "context": 2048, "batch_size": 4}
    write_config(tmp_path, config)
    out = snakemake(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--cores", "8", "--dry-run").stdout
    jobs = _jobs(out)
    logits = 2 * 4 * 2048 * 256_000 * 4  # a scoring batch's float32 logits and log-softmax, Gemma's vocabulary
    for rule, extra in (("embed", 0), ("lm_score", logits)):
        for name, n in sizes.items():
            job = next(j for j in jobs if j["rule"] == rule and f"model={name}" in j["wildcards"])
            gpus = math.ceil((2 * n + extra) * 1.2 / (gpu_memory_gb * 1e9))
            call = _sbatch(job)
            assert f"--gpus=a100:{gpus}" in call and "--nodes=1" in call and " -p gpu" in call, call
            assert "-C nvlink" in call and "--cpus-per-task=8" in call, call  # threads as configured
    expected = {40: {"embed": [1, 2, 5], "lm_score": [1, 3, 5]}, 80: {"embed": [1, 1, 3], "lm_score": [1, 2, 3]}}
    for rule, counts in expected[gpu_memory_gb].items():
        got = [int(next(j for j in jobs if j["rule"] == rule and f"model={m}" in j["wildcards"])["resources"]["gpu"])
               for m in sizes]  # fmt: skip
        assert got == counts, rule
    cpu_job = next(j for j in jobs if j["rule"] == "align_pair")
    call = _sbatch(cpu_job)
    assert " -p debug" in call and "--gpus" not in call and "-C " not in call
    fetches = [j["resources"]["slurm_partition"] for j in jobs if j["rule"] == "fetch"]
    assert fetches == ["transfer" if gpu_memory_gb == 40 else "debug"] * 3


def test_a_retried_job_gets_a_longer_time_limit():
    """The profile resubmits a failed job once; each attempt's limit is the last one's × the factor."""
    import yaml

    from prh.resources import retry_runtime

    assert [retry_runtime(90, attempt, 2) for attempt in (1, 2, 3)] == [90, 180, 360]
    assert retry_runtime(45, 2, 1.5) == 68
    assert yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["retries"] == 1
