"""Language-model score: bits-per-byte of a causal LM on a text corpus (paper, Fig. 3: 1 - bits-per-byte).

bits-per-byte = (cross-entropy summed over every token of the corpus, in bits) / (UTF-8 bytes of the corpus).
The corpus is tokenised once, prefixed with the BOS token (EOS where there is none) so that the first token
is predicted too, and cut into consecutive windows of ``context`` tokens: each token is scored exactly once,
conditioned on the tokens before it in its window (lm-eval-harness's rolling log-likelihood without overlap).

Encoders and static embeddings have no next-token distribution: they are reported as not applicable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from prh.data.corpora import text_fingerprint


def _windows(ids: list[int], start: int, context: int) -> Iterator[tuple[list[int], list[int]]]:
    """(inputs, targets) of consecutive windows: inputs[j] is the token before targets[j]."""
    shifted = [start] + ids
    for s in range(0, len(ids), context):
        yield shifted[s : s + context], ids[s : s + context]


def bits_per_byte(model, tokenizer, text: str, context: int = 512, batch_size: int = 8) -> dict:
    """Score ``text`` with a causal LM (a ``*ForCausalLM`` transformers model). Returns the summed
    cross-entropy in nats and bits, the token and byte counts, and ``bits_per_byte``."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start the corpus with")
    device = next(model.parameters()).device
    windows = list(_windows(ids, start, context))
    nats = 0.0
    with torch.inference_mode():
        for b in range(0, len(windows), batch_size):
            chunk = windows[b : b + batch_size]
            width = max(len(inputs) for inputs, _ in chunk)
            inputs = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            targets = torch.full((len(chunk), width), -100, dtype=torch.long)  # -100: not scored (padding)
            for row, (x, y) in enumerate(chunk):
                inputs[row, : len(x)], mask[row, : len(x)], targets[row, : len(y)] = (
                    torch.tensor(x),
                    1,
                    torch.tensor(y),
                )
            logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float()
            nats += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.to(device).reshape(-1), reduction="sum"
            ).item()
    n_bytes = len(text.encode("utf-8"))
    bits = nats / math.log(2)
    return {"nats": nats, "bits": bits, "tokens": len(ids), "bytes": n_bytes, "bits_per_byte": bits / n_bytes}


def is_causal_lm(spec: dict) -> bool:
    """Whether a huggingface model entry is a causal LM (its config names a *ForCausalLM architecture)."""
    if spec["source"] != "huggingface":
        return False
    from transformers import AutoConfig

    from prh.models.loading import resolve_hf_location

    location, kwargs, _ = resolve_hf_location(spec)
    config = AutoConfig.from_pretrained(location, trust_remote_code=spec["trust_remote_code"], **kwargs)
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (config.architectures or []))


def score_model(
    spec: dict,
    corpora: dict[str, str],
    context: int,
    batch_size: int,
    device: str = "auto",
    stored: dict | None = None,
    order: list[str] | None = None,
):
    """The language-model score table of a model entry (polars DataFrame): one row per corpus of ``corpora``
    (name: text), the model loaded once; not applicable for a model without a next-token head. The corpus
    ``stored`` (listed in ``order``, the corpora in the run's order) is the bits-per-byte a features model's
    file carries (``stored``: its fields), as its authors measured it; a features model is not applicable
    on any text corpus (it cannot be run), and a model that runs has no stored score."""
    import polars as pl

    from prh.data.corpora import STORED
    from prh.models.loading import load_hf_model, load_tokenizer, pick_device

    if spec["source"] == "features":
        return _stored_scores(spec, corpora, stored or {}, order or list(corpora))
    causal = is_causal_lm(spec)
    if causal:
        from transformers import AutoModelForCausalLM

        from prh.models.loading import max_positions

        model, _ = load_hf_model(spec, AutoModelForCausalLM, pick_device(device))
        tokenizer = load_tokenizer(spec)
        context = min(context, max_positions(model.config))  # a window never exceeds the model's positions
    rows = []
    for name, corpus in corpora.items():
        row = {"model": spec["name"], "corpus": name, "corpus_fingerprint": text_fingerprint(corpus),
               "context": context, "applicable": causal, "bits_per_byte": None, "tokens": None,
               "bytes": len(corpus.encode("utf-8"))}  # fmt: skip
        if causal:
            result = bits_per_byte(model, tokenizer, corpus, context=context, batch_size=batch_size)
            row |= {"bits_per_byte": result["bits_per_byte"], "tokens": result["tokens"]}
        rows.append(row)
    if STORED in (order or []):
        rows.insert(order.index(STORED), _stored_row(spec, {}, context))
    return pl.DataFrame(rows, schema_overrides=_schema())


def _schema() -> dict:
    """Every score table's column types, so that tables of models that run and of features models concatenate."""
    import polars as pl

    return {"bits_per_byte": pl.Float64, "tokens": pl.Int64, "bytes": pl.Int64, "context": pl.Int64,
            "corpus_fingerprint": pl.String}  # fmt: skip


def _stored_row(spec: dict, stored: dict, context) -> dict:
    from prh.data.corpora import STORED

    bpb = stored.get("bpb")
    return {"model": spec["name"], "corpus": STORED, "corpus_fingerprint": None, "context": context,
            "applicable": bpb is not None, "bits_per_byte": bpb, "tokens": None, "bytes": None}  # fmt: skip


def _stored_scores(spec: dict, corpora: dict[str, str], stored: dict, order: list[str]):
    """A features model's rows: its file's bits-per-byte for ``stored``, not applicable on every text corpus."""
    import polars as pl

    from prh.data.corpora import STORED

    rows = []
    for name in order:
        if name == STORED:
            rows.append(_stored_row(spec, stored, None))
            continue
        text = corpora[name]
        rows.append({"model": spec["name"], "corpus": name, "corpus_fingerprint": text_fingerprint(text),
                     "context": None, "applicable": False, "bits_per_byte": None, "tokens": None,
                     "bytes": len(text.encode("utf-8"))})  # fmt: skip
    return pl.DataFrame(rows, schema_overrides=_schema())
