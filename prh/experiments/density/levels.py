"""Caption density (the paper's Fig. 9, App. E): the same images described at increasing density, each
density level a caption set that only the language models embed; the vision models' features are reused.

In the shapes world every level is regenerated from each scene's stored Z (``describe``). The levels are
cumulative, each adding one kind of fact to the one before:

========== ============================================================================================
count      "Three objects."
shapes     "Two circles and a square." (groups by shape)
colours    "Two red circles and a blue square." (groups by colour and shape)
sizes      "Two small red circles and a large blue square." (the caption's groups)
relations  "Two small red circles above a large blue square." (the caption without its background)
background the dataset's own caption (``prh.data.shapes.caption_scene``)
positions  the caption, then where each group lies on a 3 × 3 grid ("The large blue square is at the top
           left.")
========== ============================================================================================

Groups are listed largest object first, as the caption lists them. A hub dataset instead holds one caption
column per level, and the level names are its column names.

**Summaries, as the paper made them (App. E).** A level named ``summary_<n>`` is, when ``density.summaries``
names an instruction-tuned model, each sample's dense description summarised into about n words by that
model, greedy, with the App. E prompt (``summarise``): the paper's LLaMA3-8B-Instruct over DCI's dense
captions, SmolLM2-135M-Instruct over the shapes world's ``positions`` descriptions offline. ``word_counts``
checks how near the summaries come to n words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.data.hub import hf_subset, load_hf_table
from prh.data.shapes import IMAGE_SIZE, NUMBER_WORDS, PLURALS, caption_scene, scene_from_row
from prh.data.store import read_record, write_text_set

LEVELS = ("count", "shapes", "colours", "sizes", "relations", "background", "positions")
GROUP_KEYS = {"shapes": ("shape",), "colours": ("colour", "shape"), "sizes": ("size", "colour", "shape")}
ROWS, COLUMNS = ("top", "middle", "bottom"), ("left", "centre", "right")


def _noun(shape: str, count: int) -> str:
    return shape if count == 1 else PLURALS.get(shape, shape + "s")


def _groups(scene, keys: tuple[str, ...]) -> dict[tuple, list]:
    """Objects grouped by ``keys``, largest object first (the caption's order)."""
    groups: dict[tuple, list] = {}
    for obj in sorted(scene.objects, key=lambda o: -o.radius):
        groups.setdefault(tuple(getattr(obj, key) for key in keys), []).append(obj)
    return groups


def _sentence(parts: list[str]) -> str:
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "."


def _place(x: float, y: float) -> str:
    """Where a point lies on a 3 × 3 grid over the image: "at the top left", "at the top", "on the left",
    "in the centre", ..."""
    row = ROWS[min(int(y * 3 / IMAGE_SIZE), 2)]
    column = COLUMNS[min(int(x * 3 / IMAGE_SIZE), 2)]
    if row == "middle":
        return "in the centre" if column == "centre" else f"on the {column}"
    return f"at the {row}" if column == "centre" else f"at the {row} {column}"


def describe(scene, level: str) -> str:
    """The caption of ``scene`` at density ``level`` (one of ``LEVELS``)."""
    if level not in LEVELS:
        raise ValueError(f"density level '{level}' is beyond what the shapes world's Z describes ({', '.join(LEVELS)})")
    if level == "count":
        n = len(scene.objects)
        return f"{NUMBER_WORDS[n].capitalize() if n > 1 else 'One'} object{'s' if n > 1 else ''}."
    if level in GROUP_KEYS:
        groups = _groups(scene, GROUP_KEYS[level])
        phrases = [" ".join([NUMBER_WORDS[len(members)], *key[:-1], _noun(key[-1], len(members))])
                   for key, members in groups.items()]  # fmt: skip
        return _sentence(phrases)
    caption = caption_scene(scene)
    if level == "relations":
        return caption.rsplit(" on a ", 1)[0].rstrip(",") + "."
    if level == "background":
        return caption
    places = []
    for (size, colour, shape), members in _groups(scene, GROUP_KEYS["sizes"]).items():
        centre = np.mean([o.x for o in members]), np.mean([o.y for o in members])
        verb = "is" if len(members) == 1 else "are"
        places.append(f"the {size} {colour} {_noun(shape, len(members))} {verb} {_place(*centre)}")
    return caption + " " + _sentence(places)


SUMMARY_PROMPT = (  # App. E, after Urbanek et al. (2023)
    "You are given a full-text description of an image. You should summarize it into about {n} words, being sure "
    "to include as much salient visual information as possible given the {n} word constraint, especially "
    "information from the start of the original description. The new description should apply for the "
    "original image. Respond with only the summary, in one line."
)


def summary_words(level: str) -> int | None:
    """The word target of a summary level (``summary_20`` -> 20), None for any other level."""
    head, _, n = level.partition("_")
    return int(n) if head == "summary" and n.isdigit() and int(n) > 0 else None


def summary_prompt(tokenizer, text: str, n: int) -> str:
    """The App. E conversation (system: the instruction, user: the description) in the model's chat template,
    ready for the assistant's answer; a model without a template gets the two parts on lines of their own."""
    messages = [{"role": "system", "content": SUMMARY_PROMPT.format(n=n)}, {"role": "user", "content": text}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{messages[0]['content']}\n\n{text}\n\n"


def summarise(model, tokenizer, texts: list[str], n: int, batch_size: int = 8, max_new_tokens: int | None = None):
    """Each text summarised into about ``n`` words by a causal LM: greedy decoding (deterministic), batches
    padded on the left, at most ``max_new_tokens`` (default 2n + 16: about 1.3 tokens a word, doubled), the
    answer's first line. Returns the summaries in order."""
    import torch

    limit = max_new_tokens or 2 * n + 16
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    summaries = []
    for start in range(0, len(texts), batch_size):
        prompts = [summary_prompt(tokenizer, t, n) for t in texts[start : start + batch_size]]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            out = model.generate(**batch, do_sample=False, max_new_tokens=limit, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1] :]:
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            summaries.append(text.splitlines()[0].strip() if text else "")
    return summaries


def word_counts(summaries: list[str], n: int, tolerance: float = 0.5) -> dict:
    """How near summaries come to ``n`` words: their word counts, mean, and the fraction within
    ``tolerance`` of n (0.5: between n/2 and 3n/2 words), and how many are empty."""
    words = np.array([len(s.split()) for s in summaries])
    within = (words >= n * (1 - tolerance)) & (words <= n * (1 + tolerance))
    return {
        "target": n,
        "words": words.tolist(),
        "mean_words": float(words.mean()) if len(words) else float("nan"),
        "within": float(within.mean()) if len(words) else float("nan"),
        "tolerance": tolerance,
        "empty": int((words == 0).sum()),
    }


def dense_descriptions(dataset_dir: str | Path, spec: dict, dense: str) -> list[str]:
    """What a summary level summarises, per sample: the dataset's own caption (``dense: caption``, DCI's dense
    caption in the paper preset), or for the shapes world a level of ``describe`` (``positions``, the densest)."""
    import polars as pl

    if dense == "caption":
        return pl.read_parquet(Path(dataset_dir) / "samples.parquet", columns=["caption"])["caption"].to_list()
    if spec["kind"] != "shapes":
        raise ValueError(f"density.summaries.dense: '{dense}' is a shapes-world level; dataset '{spec['name']}' is not")
    rows = pl.read_parquet(Path(dataset_dir) / "samples.parquet").to_dicts()
    return [describe(scene_from_row(row), dense) for row in rows]


def level_captions(dataset_dir: str | Path, level: str, spec: dict, summaries: str | Path | None = None) -> list[str]:
    """The captions of the dataset's samples at ``level``: a summary level's ``summaries`` file, else
    regenerated from Z (shapes), or the hub table's column ``level`` for the same seeded subset the dataset
    imported (``spec``: its config entry)."""
    import polars as pl

    if summaries:
        return pl.read_parquet(summaries, columns=["summary"])["summary"].to_list()
    if spec["kind"] == "shapes":
        rows = pl.read_parquet(Path(dataset_dir) / "samples.parquet").to_dicts()
        return [describe(scene_from_row(row), level) for row in rows]
    table = hf_subset(load_hf_table(spec, spec["split"], f"dataset '{spec['name']}'"), spec)
    if level not in table.column_names:
        raise ValueError(
            f"density level '{level}': dataset '{spec['name']}' has no caption column '{level}' "
            f"(its columns: {', '.join(table.column_names)})"
        )
    return [str(text) for text in table[level]]


def write_level(
    dataset_dir: str | Path,
    out_dir: str | Path,
    level: str,
    spec: dict,
    provenance: dict | None = None,
    size: int | None = None,
    summaries: str | Path | None = None,
) -> dict:
    """A caption set of the dataset at ``level`` in ``out_dir``: ``samples.parquet`` (sample, caption, words)
    and ``dataset.json``, whose fingerprint covers the parent dataset's and every caption, so the level's
    features are checked against the captions they came from. ``size``: the first ``size`` samples only;
    ``summaries``: a summary level's file (``write_summaries``)."""
    import polars as pl

    parent = read_record(dataset_dir)
    captions = level_captions(dataset_dir, level, spec, summaries)
    expected = parent["size"] if summaries is None else min(size or parent["size"], parent["size"])
    if len(captions) != expected:
        raise ValueError(f"density level '{level}': {len(captions)} captions for the {expected} samples")
    captions = captions[:size]
    table = pl.DataFrame({"sample": np.arange(len(captions)), "caption": captions,
                          "words": [len(c.split()) for c in captions]})  # fmt: skip
    record = {"kind": "density", "dataset": spec["name"], "level": level,
              "parent_fingerprint": parent["fingerprint"]}  # fmt: skip
    return write_text_set(out_dir, table, record, provenance, basis=parent["fingerprint"])
