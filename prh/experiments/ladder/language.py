"""The ladder's language rungs, from the training captions with a byte-level BPE tokenizer trained on them:

* causal LMs (``train_language``): a GPT-2 of ``width`` dimensions from ``transformers``, trained by
  next-token prediction on the captions joined by newlines (the format of the held-out corpus
  ``prh.data.corpora.corpus_shapes``); its validation bits-per-byte at each checkpoint;
* caption encoders (``train_world_encoder``, the positive control): the same GPT-2 body, its pooled captions
  regressing Z.

Checkpoints are ``save_pretrained`` folders (model and tokenizer), read by the ordinary huggingface loader as
``path:``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prh.experiments.ladder.training import (
    batches,
    checkpoint_folders,
    cosine_schedule,
    deterministic,
    run_steps,
    write_checkpoint,
)


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

    from prh.analysis.lm_score import bits_per_byte

    generator = deterministic(seed, threads)
    train_captions, val_captions = list(captions[: len(captions) - validation]), list(captions[-validation:])
    tokenizer = train_tokenizer(train_captions, vocab_size)
    ids = torch.tensor(tokenizer(caption_text(train_captions), add_special_tokens=False)["input_ids"])
    ids = torch.cat([torch.tensor([tokenizer.bos_token_id]), ids])
    val_text = caption_text(val_captions)
    model = GPT2LMHeadModel(gpt_config(tokenizer, width, layers, context))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = cosine_schedule(optimizer, steps)
    # token_budget: the same for every width, so that capacity is the only factor
    provenance = {
        "run": run, "modality": "language", "arch": "gpt2", "width": width, "layers": layers, "context": context,
        "vocab_size": len(tokenizer), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "train_captions": len(train_captions), "validation_captions": validation, "train_tokens": len(ids),
        "token_budget": steps * batch_size * context
    }  # fmt: skip
    folders = checkpoint_folders(checkpoints, out_dirs)

    def checkpoint(step: int) -> list[dict]:
        model.eval()
        score = bits_per_byte(model, tokenizer, val_text, context=context, batch_size=32)
        write_checkpoint(folders[step], provenance | {"step": step}, model.save_pretrained, tokenizer.save_pretrained)
        model.train()
        return [{"step": step, "split": "validation", "quantity": "bits_per_byte", "value": score["bits_per_byte"]}]

    def loss(window):
        logits = model(input_ids=window[:, :-1]).logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))

    model.train()
    windows = _windows(ids, context, batch_size, steps, generator)
    return run_steps(windows, loss, optimizer, schedule, run, checkpoints, checkpoint)


def _windows(ids: torch.Tensor, context: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` batches of windows of ``context`` + 1 tokens (a window and its next-token targets) at offsets
    drawn from ``generator``."""
    starts = len(ids) - context - 1
    for _ in range(steps):
        offsets = torch.randint(0, starts + 1, (batch_size,), generator=generator)
        yield torch.stack([ids[o : o + context + 1] for o in offsets.tolist()])


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
    every language model is embedded with) feeds a linear map regressing the scene's Z (``prh.models.world``), by
    squared error, on (caption, Z) pairs. A model taught the world from its text must align with the world,
    and with vision models to the extent they see it. Checkpoints hold the body (``GPT2Model``: no next-token
    head, so no bits-per-byte) and the tokenizer; the curves hold the training loss and, at each checkpoint,
    the validation loss and the mean cosine of the predicted and the true Z."""
    from transformers import GPT2Model

    from prh.models.loading import masked_mean
    from prh.models.world import encode_scene

    generator = deterministic(seed, threads)
    n_train = len(captions) - validation
    tokenizer = train_tokenizer(list(captions[:n_train]), vocab_size)
    batch = tokenizer(list(captions), padding=True, truncation=True, max_length=context, return_tensors="pt")
    z = torch.tensor(np.stack([encode_scene(scene) for scene in scenes]), dtype=torch.float32)
    body = GPT2Model(gpt_config(tokenizer, width, layers, context))
    head = torch.nn.Linear(width, z.shape[1])
    optimizer = torch.optim.AdamW([*body.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    schedule = cosine_schedule(optimizer, steps)
    provenance = {
        "run": run, "modality": "language", "objective": "world", "arch": "gpt2", "width": width, "layers": layers,
        "context": context, "vocab_size": len(tokenizer), "steps": steps, "batch_size": batch_size, "lr": lr,
        "seed": seed, "train_captions": n_train, "validation_captions": validation
    }  # fmt: skip
    folders = checkpoint_folders(checkpoints, out_dirs)

    def predict(index):
        mask = batch["attention_mask"][index]
        return head(masked_mean(body(input_ids=batch["input_ids"][index], attention_mask=mask).last_hidden_state, mask))

    def loss(index):
        return _z_loss(predict(index), z[index])

    def checkpoint(step: int) -> list[dict]:
        body.eval()
        held_out = torch.arange(n_train, len(captions))
        with torch.inference_mode():
            predicted = predict(held_out)
        write_checkpoint(folders[step], provenance | {"step": step}, body.save_pretrained, tokenizer.save_pretrained)
        body.train()
        cosine = float(F.cosine_similarity(predicted, z[held_out]).mean())
        return [
            {"step": step, "split": "validation", "quantity": "loss", "value": float(_z_loss(predicted, z[held_out]))},
            {"step": step, "split": "validation", "quantity": "cosine to Z", "value": cosine},
        ]

    body.train()
    return run_steps(
        batches(n_train, batch_size, steps, generator), loss, optimizer, schedule, run, checkpoints, checkpoint
    )


def _z_loss(predicted: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Squared error per scene, summed over Z's entries."""
    return F.mse_loss(predicted, z, reduction="sum") / len(z)
