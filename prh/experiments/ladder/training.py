"""The ladder's training: models trained inside the workflow on the shapes world, one module per kind
(``prh.experiments.ladder.vision``, ``prh.experiments.ladder.language``), and here what every trainer
shares: seeding, batches, the step loop with its checkpoints, and the training scenes.

Every scene of the training set is drawn from its own random stream ``[seed, i, TRAIN_STREAM]``, which no
evaluation dataset uses (alignment datasets use ``[seed, i]``, probe tasks the streams 1–5), and its latent
scene Z is stored beside its caption. The last ``validation`` scenes of the set are held out for the curves.

Training is seeded and bitwise deterministic on the CPU (deterministic algorithms, a fixed thread count,
batches drawn from a seeded generator), and the same on every x86 CPU with AVX2: torch's own kernels, oneDNN's
and MKL's are held to their AVX2 code paths (``KERNELS``), which an AVX-512 CPU would otherwise leave for
wider vectors that sum in another order. A loss that turns NaN or Inf stops the job naming the step and the
loss; checkpoints appear at their paths complete or not at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from prh.io.workflow import atomic_path

# One kernel path for every x86 CPU with AVX2 (read by torch, oneDNN and MKL at their first computation):
# training the same rung with ATEN_CPU_CAPABILITY=avx512 or =avx2 otherwise gives different weights.
KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def fixed_kernels() -> dict:
    """Hold torch, oneDNN and MKL to ``KERNELS`` for this process (before its first tensor computation, as
    the trainers call it) and return the kernel path in force, for the checkpoints' provenance. Raises
    RuntimeError where torch already chose another (a computation ran first)."""
    import logging
    import os
    import platform

    os.environ.update(KERNELS)
    path = kernel_path()
    if path["cpu_capability"] not in ("AVX2", "DEFAULT"):  # DEFAULT: a CPU without AVX2 has no AVX2 path to hold
        raise RuntimeError(f"torch's CPU kernels were chosen ({path['cpu_capability']}) before training could fix them")
    logging.getLogger("prh").info("kernels: %s on %s", path, platform.processor() or "?")
    return path


def kernel_path() -> dict:
    """The kernel path this process computes with: torch's CPU capability and ``KERNELS``."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), **KERNELS}


def deterministic(seed: int, threads: int) -> torch.Generator:
    """Seed everything, fix the kernel path (``fixed_kernels``) and the thread count and insist on
    deterministic kernels; the batch generator."""
    fixed_kernels()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def _check_finite(loss: torch.Tensor, step: int, run: str) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"training run '{run}': the loss is {value} at step {step} (lower its lr)")
    return value


def batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` index batches drawn without replacement within each epoch (a seeded shuffle per epoch)."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def _step(loss: torch.Tensor, optimizer, schedule, step: int, run: str) -> dict:
    """One optimiser step on ``loss``; its curve row. A NaN or Inf loss stops the run, naming the step."""
    value = _check_finite(loss, step, run)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return {"step": step, "split": "train", "quantity": "loss", "value": value}


def cosine_schedule(optimizer, steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def run_steps(
    batches: Iterable, loss: Callable, optimizer, schedule, run: str, checkpoints: Iterable[int], checkpoint: Callable
) -> list[dict]:
    """The loop every trainer runs: ``checkpoint(step)`` (it saves, and returns its curve rows) at step 0 when
    listed, then one optimiser step on ``loss(batch)`` per batch, checkpointing at each listed step; returns
    the curve rows (the training loss of every step among them)."""
    wanted = set(int(s) for s in checkpoints)
    rows = checkpoint(0) if 0 in wanted else []
    for step, batch in enumerate(batches, start=1):
        rows.append(_step(loss(batch), optimizer, schedule, step, run))
        if step in wanted:
            rows += checkpoint(step)
    return rows


def checkpoint_folders(checkpoints: Sequence[int], out_dirs: Sequence[str | Path]) -> dict[int, str | Path]:
    """Step -> the folder its checkpoint is written to (the rule's outputs, in the order of ``checkpoints``)."""
    return {int(step): out_dirs[i] for i, step in enumerate(checkpoints)}


def write_checkpoint(folder: str | Path, provenance: dict, *savers: Callable) -> None:
    """A checkpoint folder written atomically: what each of ``savers`` writes into it (a model's or a
    tokenizer's ``save_pretrained``, timm's ``save_for_hf``), and the run's ``training.json``
    (``provenance``)."""
    provenance = provenance | {"kernels": kernel_path()}
    with atomic_path(folder) as tmp:
        for save in savers:
            save(tmp)
        (tmp / "training.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")


def load_training_scenes(dataset_dir: str | Path) -> list:
    """The latent scenes of a training set, in sample order, from its ``samples.parquet``."""
    import polars as pl

    from prh.data.shapes import scene_from_row

    rows = pl.read_parquet(Path(dataset_dir) / "samples.parquet").to_dicts()
    return [scene_from_row(row) for row in rows]
