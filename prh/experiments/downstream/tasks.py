"""Downstream performance of causal language models (the paper's Fig. 4): multiple-choice tasks scored by
log-likelihood, each item a context and its endings, the model's answer the ending it finds most likely.

* ``score_endings`` is the scoring rule of HellaSwag as lm-evaluation-harness (0.4) runs it: the summed
  log-probability of each ending's tokens given the context (``encode_pair``: its token split), ``acc`` taking
  the largest and ``acc_norm`` the largest per character of the choice (length-normalised).
* Offline, the task is generated from the shapes world's latent scenes (``anchor_items``): a caption is cut
  before its second mention of the anchor group ("... to the left of the"), and the endings are the true
  noun with the rest of the caption, the same shape in the wrong grammatical number (a count swap), and two
  other shapes (shape swaps). Only the caption's own first mention decides it. Colour swaps are not used:
  the caption never mentions a colour twice, so every colour is equally likely given any prefix and even
  the true caption distribution scores them at chance.
* ``read_task`` reads a task table (``context``, ``endings``, ``label``); ``hellaswag_items`` turns the hub's
  HellaSwag rows into one with lm-evaluation-harness's context and preprocessing.
* A benchmark scored by generation (GSM8K in the paper's Fig. 4) is out of scope: its accuracies are read from
  a versioned table of published scores (``read_published``, a CSV kept in git), one row per model with the
  citation it comes from, and ``published_scores`` matches the table to the config's language models. The
  table's SHA-256 travels with every score, so a figure names the table version it was drawn from.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from prh.data.shapes import PLURALS, SHAPES, caption_scene, sample_scene

DOWNSTREAM_STREAM = 300  # the task's scenes: a stream no dataset, probe task or training set uses
TASK_COLUMNS = ("context", "endings", "label")
HELLASWAG_COLUMNS = ("activity_label", "ctx_a", "ctx_b", "endings", "label")
# model_id: a hub id (a config entry's id) or a config entry's name; accuracy: a fraction in [0, 1];
# setting: how it was measured ("5-shot, exact match"); source: the citation; url: where it is printed
PUBLISHED_COLUMNS = ("model_id", "accuracy", "setting", "source", "url")


def _noun(shape: str, plural: bool) -> str:
    return PLURALS.get(shape, shape + "s") if plural else shape


def anchor_items(size: int, seed: int) -> list[dict]:
    """``size`` items from scenes of the shapes world with at least three groups, in scene order. The
    caption's third clause names the anchor again ("the square"): the context ends before that noun."""
    items, index = [], 0
    while len(items) < size:
        scene = sample_scene(seed, index, DOWNSTREAM_STREAM)
        index += 1
        caption = caption_scene(scene)
        groups: dict = {}
        for obj in sorted(scene.objects, key=lambda o: -o.radius):
            groups.setdefault((obj.size, obj.colour, obj.shape), []).append(obj)
        if len(groups) < 3:
            continue
        (_, _, shape), members = next(iter(groups.items()))
        plural = len(members) > 1
        cut = caption.rindex(f" the {_noun(shape, plural)}") + len(" the")
        context, rest = caption[:cut], caption[cut + 1 + len(_noun(shape, plural)) :]
        others = [s for s in SHAPES if s != shape]
        rng = np.random.default_rng([seed, index])
        endings = [_noun(shape, plural), _noun(shape, not plural)]
        endings += [_noun(s, plural) for s in rng.choice(others, size=2, replace=False)]
        order = rng.permutation(4)
        items.append({
            "context": context,
            "endings": [" " + endings[i] + rest for i in order],
            "label": int(np.flatnonzero(order == 0)[0]),
            "scene": index - 1,
        })  # fmt: skip
    return items


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness's clean-up of HellaSwag text (``lm_eval/tasks/hellaswag/utils.py``): the WikiHow
    part's `` [title]`` becomes ``". "``, other bracketed tags are removed, double spaces collapsed."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_items(rows) -> list[dict]:
    """HellaSwag rows (the hub's ``Rowan/hellaswag``: ``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``,
    ``label``) as lm-evaluation-harness builds them (its ``process_docs``): the context
    ``activity_label + ": " + ctx_a + " " + ctx_b.capitalize()`` and each ending, both preprocessed; each
    ending is scored after the target delimiter, a space."""
    items = []
    for r in rows:
        context = hellaswag_preprocess(r["activity_label"] + ": " + r["ctx_a"] + " " + r["ctx_b"].capitalize())
        endings = [" " + hellaswag_preprocess(e) for e in r["endings"]]
        items.append({"context": context, "endings": endings, "label": int(r["label"])})
    return items


def check_task(table, where: str) -> None:
    """One clear error naming every column a task table lacks."""
    missing = [c for c in TASK_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: the task table has no column {', '.join(map(repr, missing))}")


def read_task(path: str | Path):
    import polars as pl

    table = pl.read_parquet(path)
    check_task(table, str(path))
    return table


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's split of a (context, continuation) into tokens (``_encode_pair``): trailing
    spaces of the context move to the continuation, the whole text is encoded with the tokenizer's own
    special tokens (a BOS where the tokenizer adds one), and the continuation's tokens are those beyond the
    context's. An empty context is the BOS token (else EOS) alone."""
    if not context:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], tokenizer(continuation)["input_ids"]
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    return context_ids, whole[len(context_ids) :]


def score_pairs(model, tokenizer, pairs: list[tuple[str, str]], limit: int | None = None) -> np.ndarray:
    """The log-likelihood of each (context, ending)'s ending given its context, all in one padded batch, as
    lm-evaluation-harness computes it (``encode_pair``; the input is the last ``limit + 1`` tokens, the model's
    positions, less the last one, so a long context is cut from the left)."""
    import torch
    import torch.nn.functional as F

    encoded = [encode_pair(tokenizer, c, e) for c, e in pairs]
    sequences, lengths = [], []
    for context_ids, ending_ids in encoded:
        tokens = context_ids + ending_ids
        if limit is not None:
            tokens = tokens[-(limit + 1) :]
        sequences.append(tokens[:-1])
        lengths.append(len(ending_ids))
    width = max(len(s) for s in sequences)
    inputs = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros_like(inputs)
    for row, s in enumerate(sequences):
        inputs[row, : len(s)], mask[row, : len(s)] = torch.tensor(s), 1
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float()
    logprobs = F.log_softmax(logits, dim=-1).cpu()
    scores = []
    for row, ((_, ending_ids), s, n) in enumerate(zip(encoded, sequences, lengths)):
        targets = torch.tensor(ending_ids)
        scores.append(float(logprobs[row, len(s) - n : len(s)].gather(1, targets[:, None]).sum()))
    return np.array(scores)


def choice_length(ending: str) -> int:
    """The length ``acc_norm`` divides by: characters of the choice, without the target delimiter (a leading
    space), as lm-evaluation-harness's ``process_results``."""
    return len(ending.removeprefix(" "))


def score_endings(model, tokenizer, context: str, endings: list[str], limit: int | None = None):
    """(log-likelihood, length of each choice) of each ending of one item given its context."""
    loglik = score_pairs(model, tokenizer, [(context, e) for e in endings], limit)
    return loglik, np.array([choice_length(e) for e in endings])


def evaluate(model, tokenizer, table, batch_size: int = 32, limit: int | None = None) -> dict:
    """Accuracy (``acc``), length-normalised accuracy (``acc_norm``) and the accuracy of chance over a task
    table's items, their endings scored ``batch_size`` at a time (``limit``: see ``score_pairs``)."""
    items = list(zip(table["context"], table["endings"], table["label"]))
    pairs = [(context, e) for context, endings, _ in items for e in endings]
    loglik = np.concatenate([score_pairs(model, tokenizer, pairs[b : b + batch_size], limit)
                             for b in range(0, len(pairs), batch_size)])  # fmt: skip
    correct, correct_norm, start = 0, 0, 0
    for _, endings, label in items:
        scores, lengths = loglik[start : start + len(endings)], np.array([choice_length(e) for e in endings])
        start += len(endings)
        correct += int(np.argmax(scores) == label)
        correct_norm += int(np.argmax(scores / lengths) == label)
    chance = float(np.mean([1 / len(e) for _, e, _ in items]))
    return {"items": len(items), "acc": correct / len(items), "acc_norm": correct_norm / len(items), "chance": chance}


def build_task(spec: dict, where: str):
    """A task's table from its config entry: ``kind: shapes`` (``anchor_items``), ``kind: hellaswag`` (the
    hub's ``id`` at ``revision``, or a ``save_to_disk`` folder ``path``; ``split``; the first ``size`` rows,
    all when absent), or ``kind: table`` (a parquet file ``path`` with the task columns)."""
    import polars as pl

    if spec["kind"] == "shapes":
        items = anchor_items(spec["size"], spec["seed"])
    elif spec["kind"] == "hellaswag":
        from prh.data.hub import load_hf_table

        rows = load_hf_table(spec, spec["split"], where)
        missing = [c for c in HELLASWAG_COLUMNS if c not in rows.column_names]
        if missing:
            raise ValueError(f"{where}: the HellaSwag table has no column {', '.join(map(repr, missing))}")
        size = spec.get("size") or len(rows)
        items = hellaswag_items(rows.select(range(min(size, len(rows)))))
    else:
        table = pl.read_parquet(resolve_table(spec["path"]))
        check_task(table, f"{where} ({spec['path']})")
        return table.select(TASK_COLUMNS)
    return pl.DataFrame(items).select(TASK_COLUMNS)


def resolve_table(path: str | Path) -> Path:
    """A task file's path as given (absolute, or relative to the working directory), else relative to this
    repository, where the presets' tables ship (``configs/published/``): a run in another directory finds them."""
    path = Path(path)
    shipped = Path(__file__).resolve().parents[3] / path  # the repository's root
    return path if path.exists() or path.is_absolute() or not shipped.exists() else shipped


def task_file_problems(spec: dict, where: str) -> list[str]:
    """A task's own file, checked before any job runs (config validation): a parquet table's columns (read
    without its rows), or every problem of a published-score table."""
    import polars as pl

    try:
        if spec["kind"] == "published":
            read_published(spec["table"], where)
        elif spec["kind"] == "table":
            path = resolve_table(spec["path"])
            if not path.is_file():
                return [f"{where}: the task table {spec['path']} does not exist"]
            check_task(pl.read_parquet(path, n_rows=0), f"{where} ({spec['path']})")
    except ValueError as err:
        return [str(err)]
    return []


def read_published(path: str | Path, where: str):
    """A table of published scores (``PUBLISHED_COLUMNS``; ``#`` lines are comments, e.g. its version) and its
    SHA-256. Every problem of the table is named in one error: a missing column, an accuracy outside [0, 1],
    a model listed twice, an empty citation."""
    import hashlib

    import polars as pl

    path = resolve_table(path)
    if not path.is_file():
        raise ValueError(f"{where}: the published-score table {path} does not exist")
    try:
        table = pl.read_csv(path, comment_prefix="#", schema_overrides={"accuracy": pl.Float64}, infer_schema=False)
    except pl.exceptions.PolarsError as err:  # e.g. "51.2%" in the accuracy column
        raise ValueError(f"{where} ({path}): the published-score table cannot be read: {err}") from err
    missing = [c for c in PUBLISHED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where} ({path}): the published-score table has no column {', '.join(map(repr, missing))}")
    problems = []
    bad = table.filter(~pl.col("accuracy").is_between(0, 1) | pl.col("accuracy").is_null())["model_id"]
    if len(bad):
        problems.append(f"accuracy outside [0, 1] (a fraction, not a percentage) for {', '.join(bad)}")
    twice = table["model_id"].filter(table["model_id"].is_duplicated()).unique(maintain_order=True)
    if len(twice):
        problems.append(f"listed twice: {', '.join(twice)}")
    uncited = table.filter(pl.col("source").is_null() | (pl.col("source").str.strip_chars() == ""))["model_id"]
    if len(uncited):
        problems.append(f"no source for {', '.join(uncited)}")
    if problems:
        raise ValueError(f"{where} ({path}): " + "; ".join(problems))
    return table, hashlib.sha256(path.read_bytes()).hexdigest()


def published_scores(table, sha256: str, models: list[dict], parameters: dict[str, int], task: str):
    """One row per language model entry: its published ``accuracy`` with the row's setting, source and url,
    matched on the entry's hub ``id`` or else its ``name``. A model the table lacks is not applicable (no
    number is made up for it). ``parameters``: model name -> parameter count (point size in Fig. 4)."""
    import polars as pl

    by_id = {r["model_id"]: r for r in table.to_dicts()}
    rows = []
    for spec in models:
        found = by_id.get(spec.get("id") or "") or by_id.get(spec["name"])
        rows.append({"model": spec["name"], "task": task, "applicable": found is not None,
                     "accuracy": found and found["accuracy"], "chance": None,
                     "parameters": parameters.get(spec["name"]), "setting": found and found["setting"],
                     "source": found and found["source"], "url": found and found["url"],
                     "table_sha256": sha256})  # fmt: skip
    schema = {"accuracy": pl.Float64, "chance": pl.Float64, "parameters": pl.Int64, "setting": pl.String,
              "source": pl.String, "url": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema_overrides=schema)
