"""Text corpora that language models are scored on (``prh.analysis.lm_score``); no model code, so the corpus job
starts without torch."""

from __future__ import annotations

import hashlib


def corpus_pydoc(max_bytes: int) -> str:
    """An English corpus that always exists offline: Python's own ``pydoc_data`` help topics, in key order,
    cut to at most ``max_bytes`` UTF-8 bytes (at a character boundary)."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


OPENWEBTEXT = {  # the first parquet shard of OpenWebText, pinned (the schema's default of lm_score.corpus_hub)
    "id": "Skylion007/openwebtext",
    "revision": "c6680bb039f28c472e44d33acb240c3068b89a82",
    "data_files": ["data/train-00000-of-00093.parquet"],
}


def hub_files(id: str, revision: str, data_files: list[str]) -> list[str]:
    """``hf://`` addresses of a dataset repo's files at a revision (a branch such as refs/convert/parquet is
    URL-quoted, as ``huggingface_hub``'s file system expects)."""
    from urllib.parse import quote

    return [f"hf://datasets/{id}@{quote(revision, safe='')}/{f}" for f in data_files]


def corpus_openwebtext(max_bytes: int, hub: dict | None = None, path: str | None = None, split: str = "train") -> str:
    """The first ``max_bytes`` UTF-8 bytes of a hub text dataset's ``text`` column, documents joined by blank
    lines, in file order (OpenWebText in the paper preset: ~4M tokens ≈ 16 MB). ``hub``: ``id``, ``revision``
    and the parquet ``data_files`` to read, streamed with the ``parquet`` builder, so no loading script runs
    (``datasets`` 4 and later refuse them) and only the needed row groups are downloaded; ``path``: a folder
    written by ``save_to_disk`` (offline)."""
    import datasets

    hub = hub or OPENWEBTEXT
    try:
        if path:
            rows = datasets.load_from_disk(path)
        else:
            from prh.data.hub import fetched_dataset

            fetched = fetched_dataset(hub["id"], hub["revision"])  # the fetch stage's copy, else the hub
            files = ([str(fetched[0] / f) for f in hub["data_files"]] if fetched
                     else hub_files(hub["id"], hub["revision"], hub["data_files"]))  # fmt: skip
            rows = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    except Exception as err:
        where = path or f"{hub['id']}@{hub['revision']}"
        raise RuntimeError(
            f"corpus {where}: cannot load it ({err.__class__.__name__}: {err}); with internet it streams from "
            f"the hub, offline save it once with `save_to_disk` and set lm_score.corpus_path"
        ) from err
    if isinstance(rows, datasets.DatasetDict):
        rows = rows[split]
    pieces, size = [], 0
    for row in rows:
        piece = row["text"].encode("utf-8")
        pieces.append(piece)
        size += len(piece) + 2
        if size >= max_bytes:
            break
    return b"\n\n".join(pieces)[:max_bytes].decode("utf-8", errors="ignore")


CAPTION_STREAM = 101  # held-out captions: a random stream no dataset, probe task or training set draws from


def corpus_shapes(max_bytes: int, seed: int = 0) -> str:
    """The shapes world's own text, as the paper uses OpenWebText: captions of scenes drawn from their own
    random stream (so held out from every dataset and from the training set), one per line, as many whole
    captions as fit in ``max_bytes`` UTF-8 bytes."""
    from prh.data.shapes import caption_scene, sample_scene

    lines, size, i = [], 0, 0
    while True:
        line = caption_scene(sample_scene(seed, i, CAPTION_STREAM)) + "\n"
        if size + len(line.encode("utf-8")) > max_bytes:
            break
        lines.append(line)
        size += len(line.encode("utf-8"))
        i += 1
    return "".join(lines)


def load_corpus(
    name: str, max_bytes: int, corpus_path: str | None = None, seed: int = 0, corpus_hub: dict | None = None
) -> str:
    """The configured corpus: ``shapes`` (held-out captions), ``pydoc`` (offline) or ``openwebtext`` (the
    paper's: from ``corpus_path``, a local copy, else from the hub as ``corpus_hub`` says)."""
    if name == "shapes":
        return corpus_shapes(max_bytes, seed)
    if name == "pydoc":
        return corpus_pydoc(max_bytes)
    if name == "openwebtext":
        return corpus_openwebtext(max_bytes, corpus_hub, corpus_path)
    raise ValueError(f"unknown corpus '{name}'")


STORED = "stored"  # not a text: the bits-per-byte each features model's file carries (prh.models.precomputed)


def text_corpora(lm_score: dict) -> list[str]:
    """The scored corpora that are texts to read (``stored`` is read from the features models' stores)."""
    return [name for name in scored_corpora(lm_score) if name != STORED]


def scored_corpora(lm_score: dict) -> list[str]:
    """The corpora a run scores every causal LM on: ``lm_score.corpus`` (Fig. 3's) first, then the others."""
    return list(dict.fromkeys([lm_score["corpus"], *(lm_score.get("corpora") or [])]))


def of_corpus(table, corpus: str):
    """The rows of a language-model score table (``results/lm_scores.parquet``) for one corpus."""
    return table.filter(table["corpus"] == corpus)


def text_fingerprint(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
