"""Cluster resources of a job from the size of what it holds, known before anything is downloaded.

A model job's memory, GPUs and time follow from its parameter count (a model's ``params`` key, else what
preflight resolved on the hub): its weights in the compute dtype, with ``HEADROOM`` for activations and the
CUDA context, over as many GPUs as they need; its time from the forward FLOPs (2 · parameters · tokens) at
``THROUGHPUT``, a conservative sustained rate of transformers' eager bfloat16 forward on one A100/H100. A state
job's memory follows from its features store's layers × width × N.
"""

from __future__ import annotations

import math

from prh.io.workflow import dry_run_jobs

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
HEADROOM = 1.2  # activations of a batch, the CUDA context, allocator fragmentation
HOST_BASE_MB = 8000  # interpreter, torch, tokenizer, one batch of inputs
SHARD_MB = 10000  # loading straight to the GPUs, the host holds about one safetensors shard at a time
THROUGHPUT = 25e12  # FLOP/s
BASE_MINUTES = 30  # start-up, loading the weights from the hub cache, writing the store
VOCAB_BOUND = 256_000  # the largest vocabulary of the paper's LLMs (Gemma's), for a model that does not give its own
DOWNSTREAM_BATCH = (32, 160)  # a downstream_score batch: 32 HellaSwag context-ending pairs of at most ~160 tokens


def weight_bytes(parameters: float, dtype: str) -> int:
    """Bytes of ``parameters`` weights in ``dtype``."""
    return int(math.ceil(parameters * BYTES[dtype]))


def gpus_needed(weights: int, gpu_memory_gb: float) -> int:
    """GPUs of ``gpu_memory_gb`` that hold ``weights`` bytes with ``HEADROOM``."""
    return max(1, math.ceil(weights * HEADROOM / (gpu_memory_gb * 1e9)))


def logits_bytes(batch: int, context: int, vocab: int = VOCAB_BOUND) -> int:
    """The float32 logits of one scored batch and their log-softmax: ``2 · batch · context · vocab · 4`` bytes,
    on the GPU that holds the output layer (16.8 GB for Gemma's vocabulary at batch 4 × 2,048 tokens)."""
    return 2 * batch * context * vocab * 4


def model_job(parameters: float, compute_dtype: str, tokens: float, gpus: int, gpu_memory_gb: float,
              logits: int = 0) -> dict:  # fmt: skip
    """``mem_mb``, ``gpu`` and ``runtime`` (minutes) of a job that runs a model of ``parameters`` over
    ``tokens`` tokens. ``gpus``: what the config gives each model job (0: none, the model runs on the CPU
    and its weights live in host memory); a model that does not fit that many gets as many as it needs;
    ``logits``: the bytes of a scoring job's logits buffer (``logits_bytes``), which the GPUs hold too."""
    weights = weight_bytes(parameters, compute_dtype)
    if gpus:
        gpu = max(gpus, gpus_needed(weights + logits, gpu_memory_gb))
        mem_mb = HOST_BASE_MB + min(SHARD_MB, math.ceil(weights / 1e6))
    else:
        gpu, mem_mb = 0, HOST_BASE_MB + math.ceil(weights * HEADROOM / 1e6)
    runtime = BASE_MINUTES + math.ceil(2 * parameters * tokens / THROUGHPUT / 60)
    return {"mem_mb": int(mem_mb), "gpu": int(gpu), "runtime": int(runtime)}


def retry_runtime(minutes: int, attempt: int, factor: float) -> int:
    """The time limit of a job's ``attempt`` (1 for the first): ``minutes`` × ``factor`` per retry, so a job
    that ran out of time gets longer (the profile's ``retries``, the config's ``cluster.retry_runtime_factor``)."""
    return round(minutes * factor ** (attempt - 1))


def state_mem_mb(layers: int, width: int, samples: int) -> int:
    """Memory of one model's state job: its features read as float64 and two working copies (the prepared
    layers and the all-layers candidate), with ``HOST_BASE_MB`` for the rest."""
    return HOST_BASE_MB // 4 + math.ceil(3 * layers * width * samples * 8 / 1e6)


def store_state_mem_mb(path) -> int:
    """``state_mem_mb`` of a features store, read from its shape (layer, sample, width) alone. A store that
    does not exist yet raises FileNotFoundError: Snakemake then sizes the job once the store is written."""
    from pathlib import Path

    import zarr

    if not Path(path).exists():
        raise FileNotFoundError(2, "no features store yet", str(path))  # .filename: Snakemake's test
    layers, samples, width = zarr.open_group(str(path), mode="r")["features"].shape
    return state_mem_mb(layers, width, samples)


def model_parameters(spec: dict, preflight: dict | None) -> float | None:
    """A model's parameter count: its ``params`` key, else what preflight resolved on the hub (the
    safetensors parameter count, else the weight bytes over the bytes of the stored dtype)."""
    if spec.get("params"):
        return float(spec["params"])
    for entry in (preflight or {}).get("references", []):
        if entry.get("key", "").endswith(f"(model '{spec['name']}')"):
            if entry.get("parameters"):
                return float(entry["parameters"])
            if entry.get("weight_bytes"):
                return entry["weight_bytes"] / 2  # hub weights are mostly float16/bfloat16
    return None


def job_tokens(config: dict) -> dict[str, float]:
    """About how many tokens one job of each model rule runs over, for its time estimate."""
    n = max((d.get("size") or 1024 for d in config["datasets"]), default=1024)
    tasks = (config.get("probes") or {}).get("tasks", [])
    probe_images = sum(t.get("max_train", 0) + t.get("max_val", 0) + (t.get("max_test") or 10000) for t in tasks)
    return {
        "embed": n * 256,  # a ViT's patch tokens, or a caption's
        "embed_texts": n * 128,
        "embed_probe_tasks": probe_images * 256,
        "lm_score": config["lm_score"]["max_bytes"] / 4,  # about 4 bytes a token
        "downstream_score": 10042 * 4 * 128,  # HellaSwag's validation items, 4 endings each
        "density_summaries": n * 512,  # the prompt with its dense description, then the summary
    }


def stage_estimates(config: dict, tokens: dict | None = None) -> list[dict]:
    """GPU-hours per model stage of a validated config: each job's forward FLOPs (2 · parameters · tokens) at
    ``THROUGHPUT``, times the GPUs it holds (a model split over devices runs one device at a time);
    ``tokens``: rule -> tokens per job (the workflow's ``job_tokens``). Models without ``params`` are left out."""
    embedding, tokens = config["embedding"], tokens or job_tokens(config)
    models = {m["name"]: m for m in config["models"] if m.get("params")}
    language = [m for m in models.values() if m["modality"] == "language"]
    vision = [m for m in models.values() if m["modality"] == "vision"]
    captioned = [d for d in config["datasets"] if d["kind"] != "places365"]
    density = config["density"]
    jobs = {
        "embed": [
            (m, n) for m in models.values() for n in (captioned if m["modality"] == "language" else config["datasets"])
        ],
        "embed_texts": [(m, level) for m in language for level in (density["levels"] if density["dataset"] else [])]
        + [(m, name) for m in language for name in config["colour"]["sets"]],  # Fig. 8's sentences
        "embed_probe_tasks": [(m, None) for m in vision] if config.get("probes") else [],
        "lm_score": [(m, None) for m in language],
        "downstream_score": [(m, None) for m in language if config["downstream"]["tasks"]],
    }
    summariser = (density.get("summaries") or {}).get("model")
    if summariser and summariser.get("params"):
        jobs["density_summaries"] = [(summariser, level) for level in density["levels"]]
    rows = []
    for rule, members in jobs.items():
        hours = 0.0
        for spec, _ in members:
            dtype = spec.get("compute_dtype", "float32")
            job = model_job(spec["params"], dtype, tokens[rule], max(1, embedding["gpus"]), embedding["gpu_memory_gb"])
            hours += job["gpu"] * 2 * spec["params"] * tokens[rule] / THROUGHPUT / 3600
        rows.append({"stage": rule, "jobs": len(members), "gpu_hours": hours})
    return rows


def reservations(jobs: list[dict]) -> list[dict]:
    """What a run asks the scheduler for, per rule of a dry run's ``jobs``: time limit × GPUs (GPU-hours) and,
    for jobs without a GPU, time limit × threads (CPU-hours). A job sized once its input exists (a state
    job: its features store) counts the rule's limit as planned."""
    rows: dict[str, dict] = {}
    for job in jobs:
        resources = job["resources"]
        hours = int(resources.get("runtime", 0)) / 60
        gpus = int(resources.get("gpu", 0) or 0)
        row = rows.setdefault(job["rule"], {"rule": job["rule"], "jobs": 0, "gpu_hours": 0.0, "cpu_hours": 0.0})
        row["jobs"] += 1
        row["gpu_hours"] += hours * gpus
        row["cpu_hours"] += 0.0 if gpus else hours * job["threads"]
    return sorted(rows.values(), key=lambda r: (-r["gpu_hours"], -r["cpu_hours"], r["rule"]))


def reservation_table(jobs: list[dict]) -> str:
    """``reservations`` as a markdown table: rules with GPUs first, the rest summed per rule, and a total."""
    rows = reservations(jobs)
    lines = ["| rule | jobs | GPU-hours reserved | CPU-hours reserved |", "|---|---:|---:|---:|"]
    lines += [f"| {r['rule']} | {r['jobs']} | {r['gpu_hours']:.0f} | {r['cpu_hours']:.0f} |" for r in rows
              if r["gpu_hours"] or r["cpu_hours"] >= 1]  # fmt: skip
    small = [r for r in rows if not r["gpu_hours"] and r["cpu_hours"] < 1]
    if small:
        lines.append(f"| {len(small)} other rules | {sum(r['jobs'] for r in small)} | 0 | "
                     f"{sum(r['cpu_hours'] for r in small):.1f} |")  # fmt: skip
    total = {k: sum(r[k] for r in rows) for k in ("jobs", "gpu_hours", "cpu_hours")}
    lines.append(f"| **all** | {total['jobs']} | {total['gpu_hours']:.0f} | {total['cpu_hours']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m prh.resources CONFIG``: GPU-hours per model stage and the weights to download, as markdown.
    ``python -m prh.resources --dry-run DRY_RUN.txt``: what a dry run's jobs reserve (``reservation_table``)."""
    import sys

    import yaml

    from prh.config import validate_config

    args = sys.argv[1:] if argv is None else argv
    if args[0] == "--dry-run":
        print(reservation_table(dry_run_jobs(open(args[1]).read())))
        return 0
    config = validate_config(yaml.safe_load(open(args[0])))
    rows = stage_estimates(config)
    print("| stage | jobs | GPU-hours |\n|---|---|---|")
    for row in rows:
        print(f"| {row['stage']} | {row['jobs']} | {row['gpu_hours']:.1f} |")
    print(f"| all | {sum(r['jobs'] for r in rows)} | {sum(r['gpu_hours'] for r in rows):.1f} |")
    weights = sum(m["params"] * 2 for m in config["models"] if m.get("params"))
    summariser = (config["density"].get("summaries") or {}).get("model") or {}
    weights += 2 * summariser.get("params", 0)
    print(f"\nWeights to download (about 2 bytes a parameter): {weights / 1e9:.0f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
