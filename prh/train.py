"""Train stage: a ladder of models trained inside the workflow on the shapes world (issue: convergence in a
world we know).

Every scene of the training set is drawn from its own random stream ``[seed, i, TRAIN_STREAM]``, which no
evaluation dataset uses (alignment datasets use ``[seed, i]``, probe tasks the streams 1–5), and its latent
scene Z is stored beside its caption. The last ``validation`` scenes of the set are held out for the curves.

* **Vision**: a timm ResNet of ``width`` channels in its first stage, trained from a seeded random init with
  one supervised softmax head per scene attribute of the ``task set`` (``ATTRIBUTES``), the heads being
  slices of the classifier. Checkpoints are timm Hugging Face folders (``timm.models.save_for_hf``: a
  ``config.json`` with the architecture, its arguments and the preprocessing, and ``model.safetensors``),
  read by the ordinary timm loader as ``local-dir:<folder>``.
* **Language**: a GPT-2 of ``width`` dimensions from ``transformers``, with a byte-level BPE tokenizer trained
  on the training captions, trained by next-token prediction on the captions joined by newlines (the format
  the held-out corpus of ``prh.corpora.corpus_shapes`` has). Checkpoints are ``save_pretrained`` folders
  (model and tokenizer), read by the ordinary huggingface loader as ``path:``.
* **Caption encoders** (the positive control): the same GPT-2 body, its pooled captions regressing Z.

Training is seeded and bitwise deterministic on the CPU (deterministic algorithms, a fixed thread count,
batches drawn from a seeded generator). A loss that turns NaN or Inf stops the job naming the step and the
loss; checkpoints appear at their paths complete or not at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prh.datasets import ATTRIBUTES, attribute_label, scene_from_row
from prh.workflow import atomic_path


def deterministic(seed: int, threads: int) -> torch.Generator:
    """Seed everything, fix the thread count and insist on deterministic kernels; the batch generator."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def _check_finite(loss: torch.Tensor, step: int, run: str) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"training run '{run}': the loss is {value} at step {step} (lower its lr)")
    return value


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
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


def _cosine(optimizer, steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


# ---------------------------------------------------------------------------------------------- vision


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
    from timm.models import save_for_hf

    from prh.models import ImagePreprocessing, prepare_images

    generator = deterministic(seed, threads)
    data_config = _vision_data_config(input_size)
    pre = ImagePreprocessing(
        input_size=input_size,
        crop_pct=data_config["crop_pct"],
        mean=data_config["mean"],
        std=data_config["std"],
        interpolation=data_config["interpolation"],
    )
    x = torch.cat([prepare_images(np.asarray(images[s : s + 256]), pre) for s in range(0, len(scenes), 256)])
    y = torch.tensor([[attribute_label(scene, a) for a in attributes] for scene in scenes], dtype=torch.long)
    n_train = len(scenes) - validation
    sizes = [ATTRIBUTES[a] for a in attributes]
    bounds = np.cumsum([0] + sizes)
    model_args = vision_model_args(width, depth)
    model = timm.create_model(arch, pretrained=False, num_classes=int(bounds[-1]), **model_args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = _cosine(optimizer, steps)

    def losses(logits, targets):
        return [F.cross_entropy(logits[:, bounds[h] : bounds[h + 1]], targets[:, h]) for h in range(len(sizes))]

    def evaluate(step: int) -> list[dict]:
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(x[s : s + 256]) for s in range(n_train, len(scenes), 256)])
        targets = y[n_train:]
        rows = []
        for h, attribute in enumerate(attributes):
            head = logits[:, bounds[h] : bounds[h + 1]]
            accuracy = float((head.argmax(dim=1) == targets[:, h]).float().mean())
            loss = float(F.cross_entropy(head, targets[:, h]))
            rows.append({"step": step, "split": "validation", "quantity": f"accuracy/{attribute}", "value": accuracy})
            rows.append({"step": step, "split": "validation", "quantity": f"loss/{attribute}", "value": loss})
        model.train()
        return rows

    def save(step: int) -> None:
        was_training = model.training
        model.eval()
        with atomic_path(out_dirs[wanted[step]]) as tmp:
            save_for_hf(model, str(tmp), model_args=model_args, data_config=data_config, safe_serialization=True)
            (tmp / "training.json").write_text(json.dumps(provenance | {"step": step}, indent=2, sort_keys=True) + "\n")
        model.train(was_training)

    provenance = {
        "run": run,
        "modality": "vision",
        "arch": arch,
        "model_args": model_args,
        "attributes": list(attributes),
        "input_size": input_size,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_scenes": n_train,
        "validation_scenes": validation,
    }
    wanted = {int(s): i for i, s in enumerate(checkpoints)}
    rows = []
    model.train()
    if 0 in wanted:
        rows += evaluate(0)
        save(0)
    for step, index in enumerate(_batches(n_train, batch_size, steps, generator), start=1):
        rows.append(_step(torch.stack(losses(model(x[index]), y[index])).sum(), optimizer, schedule, step, run))
        if step in wanted:
            rows += evaluate(step)
            save(step)
    return rows


# -------------------------------------------------------------------------------------------- language


def train_tokenizer(captions: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``captions``, with ``<|endoftext|>`` as its BOS,
    EOS and padding token. Byte-level: every text is encoded losslessly, so bits-per-byte is well defined."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        list(captions), vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"], show_progress=False
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def gpt_config(tokenizer, width: int, layers: int, context: int):
    """A GPT-2 of ``layers`` blocks of ``width`` dimensions (heads of 16), ``context`` positions, no dropout."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=context,
        n_embd=width,
        n_layer=layers,
        n_head=max(width // 16, 1),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )


def caption_text(captions: Sequence[str]) -> str:
    """Captions as one text, one per line: what language models are trained and scored on."""
    return "\n".join(captions) + "\n"


def train_language(
    captions: Sequence[str],
    *,
    run: str,
    width: int,
    layers: int,
    context: int,
    vocab_size: int,
    steps: int,
    checkpoints: Sequence[int],
    out_dirs: Sequence[str | Path],
    validation: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Train one language rung: a GPT-2 with ``layers`` blocks of ``width`` dimensions (heads of 16
    dimensions), on windows of ``context`` tokens of the training captions; write a ``save_pretrained`` folder
    (model and tokenizer) at each step of ``checkpoints``. The last ``validation`` captions are held out: the
    curves hold the training loss per step and the validation bits-per-byte at each checkpoint."""
    from transformers import GPT2LMHeadModel

    from prh.lm_score import bits_per_byte

    generator = deterministic(seed, threads)
    train_captions, val_captions = list(captions[: len(captions) - validation]), list(captions[-validation:])
    tokenizer = train_tokenizer(train_captions, vocab_size)
    ids = torch.tensor(tokenizer(caption_text(train_captions), add_special_tokens=False)["input_ids"])
    ids = torch.cat([torch.tensor([tokenizer.bos_token_id]), ids])
    val_text = caption_text(val_captions)
    model = GPT2LMHeadModel(gpt_config(tokenizer, width, layers, context))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = _cosine(optimizer, steps)
    provenance = {
        "run": run,
        "modality": "language",
        "arch": "gpt2",
        "width": width,
        "layers": layers,
        "context": context,
        "vocab_size": len(tokenizer),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_captions": len(train_captions),
        "validation_captions": validation,
        "train_tokens": len(ids),
        "token_budget": steps * batch_size * context,  # the same for every width: capacity is the only factor
    }
    wanted = {int(s): i for i, s in enumerate(checkpoints)}

    def evaluate_and_save(step: int) -> list[dict]:
        model.eval()
        score = bits_per_byte(model, tokenizer, val_text, context=context, batch_size=32)
        with atomic_path(out_dirs[wanted[step]]) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "training.json").write_text(json.dumps(provenance | {"step": step}, indent=2, sort_keys=True) + "\n")
        model.train()
        return [{"step": step, "split": "validation", "quantity": "bits_per_byte", "value": score["bits_per_byte"]}]

    rows = evaluate_and_save(0) if 0 in wanted else []
    model.train()
    starts = len(ids) - context - 1  # a window and its next-token targets
    for step in range(1, steps + 1):
        offsets = torch.randint(0, starts + 1, (batch_size,), generator=generator)
        window = torch.stack([ids[o : o + context + 1] for o in offsets.tolist()])
        logits = model(input_ids=window[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
        rows.append(_step(loss, optimizer, schedule, step, run))
        if step in wanted:
            rows += evaluate_and_save(step)
    return rows


def train_world_encoder(
    captions: Sequence[str],
    scenes: Sequence,
    *,
    run: str,
    width: int,
    layers: int,
    context: int,
    vocab_size: int,
    steps: int,
    checkpoints: Sequence[int],
    out_dirs: Sequence[str | Path],
    validation: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int = 1,
) -> list[dict]:
    """Train the positive control: the GPT-2 body of ``train_language`` whose masked token mean (the pooling
    every language model is embedded with) feeds a linear map regressing the scene's Z (``prh.world``), by
    squared error, on (caption, Z) pairs. A model taught the world from its text must align with the world,
    and with vision models to the extent they see it. Checkpoints hold the body (``GPT2Model``: no next-token
    head, so no bits-per-byte) and the tokenizer; the curves hold the training loss and, at each checkpoint,
    the validation loss and the mean cosine of the predicted and the true Z."""
    from transformers import GPT2Model

    from prh.models import masked_mean
    from prh.world import encode_scene

    generator = deterministic(seed, threads)
    n_train = len(captions) - validation
    tokenizer = train_tokenizer(list(captions[:n_train]), vocab_size)
    batch = tokenizer(list(captions), padding=True, truncation=True, max_length=context, return_tensors="pt")
    z = torch.tensor(np.stack([encode_scene(scene) for scene in scenes]), dtype=torch.float32)
    body = GPT2Model(gpt_config(tokenizer, width, layers, context))
    head = torch.nn.Linear(width, z.shape[1])
    optimizer = torch.optim.AdamW([*body.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    schedule = _cosine(optimizer, steps)

    def predict(index):
        mask = batch["attention_mask"][index]
        return head(masked_mean(body(input_ids=batch["input_ids"][index], attention_mask=mask).last_hidden_state, mask))

    def loss_of(predicted, index):
        return F.mse_loss(predicted, z[index], reduction="sum") / len(index)  # per scene, summed over Z

    def evaluate_and_save(step: int) -> list[dict]:
        body.eval()
        held_out = torch.arange(n_train, len(captions))
        with torch.inference_mode():
            predicted = predict(held_out)
        cosine = float(F.cosine_similarity(predicted, z[held_out]).mean())
        with atomic_path(out_dirs[wanted[step]]) as tmp:
            body.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "training.json").write_text(json.dumps(provenance | {"step": step}, indent=2, sort_keys=True) + "\n")
        body.train()
        return [
            {"step": step, "split": "validation", "quantity": "loss", "value": float(loss_of(predicted, held_out))},
            {"step": step, "split": "validation", "quantity": "cosine to Z", "value": cosine},
        ]

    provenance = {
        "run": run,
        "modality": "language",
        "objective": "world",
        "arch": "gpt2",
        "width": width,
        "layers": layers,
        "context": context,
        "vocab_size": len(tokenizer),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_captions": n_train,
        "validation_captions": validation,
    }
    wanted = {int(s): i for i, s in enumerate(checkpoints)}
    rows = evaluate_and_save(0) if 0 in wanted else []
    body.train()
    for step, index in enumerate(_batches(n_train, batch_size, steps, generator), start=1):
        rows.append(_step(loss_of(predict(index), index), optimizer, schedule, step, run))
        if step in wanted:
            rows += evaluate_and_save(step)
    return rows


def load_training_scenes(dataset_dir: str | Path) -> list:
    """The latent scenes of a training set, in sample order, from its ``samples.parquet``."""
    import polars as pl

    rows = pl.read_parquet(Path(dataset_dir) / "samples.parquet").to_dicts()
    return [scene_from_row(row) for row in rows]
