"""The ladder's vision rungs: a timm ResNet of ``width`` channels in its first stage, trained from a seeded
random init with one supervised softmax head per scene attribute of the ``task set`` (``ATTRIBUTES``), the
heads being slices of the classifier. Checkpoints are timm Hugging Face folders (``timm.models.save_for_hf``: a
``config.json`` with the architecture, its arguments and the preprocessing, and ``model.safetensors``), read
by the ordinary timm loader as ``local-dir:<folder>``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prh.data.shapes import ATTRIBUTES, attribute_label
from prh.experiments.ladder.training import batches, cosine_schedule, deterministic, run_steps, write_checkpoint


def vision_model_args(width: int, depth: Sequence[int]) -> dict:
    """timm ResNet arguments for a ladder rung: BasicBlocks, stages of width, 2, 4 and 8 x width channels,
    a deep stem (three 3 x 3 convolutions) ending at ``width`` channels."""
    return {
        "layers": list(depth),
        "channels": [width * m for m in (1, 2, 4, 8)],
        "stem_type": "deep",
        "stem_width": max(width // 2, 1),
    }


def _vision_data_config(input_size: int) -> dict:
    """Preprocessing of the ladder's CNNs, saved in every checkpoint: the whole 224-pixel scene resized to
    ``input_size`` (crop_pct 1: nothing is cut off), ImageNet normalisation."""
    return {
        "input_size": (3, input_size, input_size),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    }


def train_vision(
    images,
    scenes: Sequence,
    *,
    run: str,
    arch: str,
    width: int,
    depth: Sequence[int],
    attributes: Sequence[str],
    input_size: int,
    steps: int,
    checkpoints: Sequence[int],
    out_dirs: Sequence[str | Path],
    validation: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Train one vision rung and write a checkpoint folder at each step of ``checkpoints`` (to ``out_dirs``).

    ``images``: (N, 224, 224, 3) uint8 (a Zarr array or ndarray), ``scenes``: their latent scenes; the last
    ``validation`` are held out. Returns the curve rows: the training loss per step and, at each checkpoint,
    the validation accuracy of every head."""
    import timm

    generator = deterministic(seed, threads)
    data_config = _vision_data_config(input_size)
    x, y = _vision_tensors(images, scenes, attributes, data_config)
    n_train = len(scenes) - validation
    bounds = np.cumsum([0] + [ATTRIBUTES[a] for a in attributes])  # head h: classifier outputs bounds[h]:bounds[h+1]
    model_args = vision_model_args(width, depth)
    model = timm.create_model(arch, pretrained=False, num_classes=int(bounds[-1]), **model_args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = cosine_schedule(optimizer, steps)
    provenance = {
        "run": run, "modality": "vision", "arch": arch, "model_args": model_args, "attributes": list(attributes),
        "input_size": input_size, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "train_scenes": n_train, "validation_scenes": validation,
    }  # fmt: skip
    folders = {int(s): out_dirs[i] for i, s in enumerate(checkpoints)}

    def loss(index) -> torch.Tensor:
        logits, targets = model(x[index]), y[index]
        heads = [F.cross_entropy(logits[:, bounds[h] : bounds[h + 1]], targets[:, h]) for h in range(len(attributes))]
        return torch.stack(heads).sum()

    def checkpoint(step: int) -> list[dict]:
        rows = _validation_rows(model, x[n_train:], y[n_train:], attributes, bounds, step)
        _save_vision(model, folders[step], model_args, data_config, provenance | {"step": step})
        return rows

    model.train()
    batched = batches(n_train, batch_size, steps, generator)
    return run_steps(batched, loss, optimizer, schedule, run, checkpoints, checkpoint)


def _vision_tensors(images, scenes: Sequence, attributes: Sequence[str], data_config: dict):
    """The scenes' images preprocessed as the checkpoints say, and their labels (one column per head)."""
    from prh.models.loading import ImagePreprocessing, prepare_images

    keys = ("crop_pct", "mean", "std", "interpolation")
    pre = ImagePreprocessing(input_size=data_config["input_size"][1], **{key: data_config[key] for key in keys})
    x = torch.cat([prepare_images(np.asarray(images[s : s + 256]), pre) for s in range(0, len(scenes), 256)])
    y = torch.tensor([[attribute_label(scene, a) for a in attributes] for scene in scenes], dtype=torch.long)
    return x, y


def _validation_rows(model, x, y, attributes: Sequence[str], bounds, step: int) -> list[dict]:
    """Validation accuracy and loss of every head at ``step`` (the model left in training mode)."""
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[s : s + 256]) for s in range(0, len(x), 256)])
    rows = []
    for h, attribute in enumerate(attributes):
        head = logits[:, bounds[h] : bounds[h + 1]]
        accuracy = float((head.argmax(dim=1) == y[:, h]).float().mean())
        loss = float(F.cross_entropy(head, y[:, h]))
        rows.append({"step": step, "split": "validation", "quantity": f"accuracy/{attribute}", "value": accuracy})
        rows.append({"step": step, "split": "validation", "quantity": f"loss/{attribute}", "value": loss})
    model.train()
    return rows


def _save_vision(model, folder, model_args: dict, data_config: dict, provenance: dict) -> None:
    """A timm Hugging Face folder (config, safetensors) with the run's ``training.json``, written atomically."""
    from timm.models import save_for_hf

    def save(tmp):
        save_for_hf(model, str(tmp), model_args=model_args, data_config=data_config, safe_serialization=True)

    was_training = model.training
    model.eval()
    write_checkpoint(folder, provenance, save)
    model.train(was_training)
