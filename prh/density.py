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
background the dataset's own caption (``prh.datasets.caption_scene``)
positions  the caption, then where each group lies on a 3 × 3 grid ("The large blue square is at the top
           left.")
========== ============================================================================================

Groups are listed largest object first, as the caption lists them. A hub dataset (DCI with summaries, as the
paper) instead holds one caption column per level, and the level names are its column names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.datasets import (
    IMAGE_SIZE,
    NUMBER_WORDS,
    PLURALS,
    caption_scene,
    hf_subset,
    load_hf_table,
    read_record,
    scene_from_row,
    write_text_set,
)

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


def level_captions(dataset_dir: str | Path, level: str, spec: dict) -> list[str]:
    """The captions of the dataset's samples at ``level``: regenerated from Z (shapes), or the hub table's
    column ``level`` for the same seeded subset the dataset imported (``spec``: its config entry)."""
    import polars as pl

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
) -> dict:
    """A caption set of the dataset at ``level`` in ``out_dir``: ``samples.parquet`` (sample, caption, words)
    and ``dataset.json``, whose fingerprint covers the parent dataset's and every caption, so the level's
    features are checked against the captions they came from. ``size``: the first ``size`` samples only."""
    import polars as pl

    parent = read_record(dataset_dir)
    captions = level_captions(dataset_dir, level, spec)
    if len(captions) != parent["size"]:
        raise ValueError(f"density level '{level}': {len(captions)} captions for the {parent['size']} samples")
    captions = captions[:size]
    table = pl.DataFrame({"sample": np.arange(len(captions)), "caption": captions,
                          "words": [len(c.split()) for c in captions]})  # fmt: skip
    record = {"kind": "density", "dataset": spec["name"], "level": level,
              "parent_fingerprint": parent["fingerprint"]}  # fmt: skip
    return write_text_set(out_dir, table, record, provenance, basis=parent["fingerprint"])


def level_alignment(
    level_dir: str | Path,
    dataset_dir: str | Path,
    vision: dict[str, str | Path],
    language: dict[str, str | Path],
    metrics: dict[str, dict],
    quantile: float = 0.95,
    quantile_mode: str = "global",
    concat_layers: bool = False,
):
    """The best score over layer pairs of every (vision, language) pair at one density level, for each
    metric (name -> parameters): ``score`` and its layers (metric, vision, language), and the level's caption
    length in words (``words``: the mean). ``vision`` maps names to the dataset's feature stores (checked
    against the dataset; a level of the first n samples reads their first n rows), ``language`` to the level's
    (checked against the level's captions)."""
    import xarray as xr

    from prh.features import check_store, read_layers
    from prh.metrics.definitions import prepare_stack
    from prh.metrics.layerwise import LayerStates, best_of, layer_scores
    from prh.provenance import as_attrs

    record, parent = read_record(level_dir), read_record(dataset_dir)

    def states(path, against, name):  # the level's samples: the dataset's first record["size"]
        check_store(path, against, name)
        layers = [a[: record["size"]] for a in read_layers(path)]
        return LayerStates(prepare_stack(layers, quantile, quantile_mode, concat_layers))

    lstates = {m: states(p, record, f"{record['dataset']} at level {record['level']}") for m, p in language.items()}
    shape = (len(metrics), len(vision), len(language))
    score, layer_x, layer_y = np.full(shape, np.nan), np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    for i, path in enumerate(vision.values()):
        sv = states(path, parent, record["dataset"])  # one vision model in memory at a time
        for j, sl in enumerate(lstates.values()):
            for m, (metric, params) in enumerate(metrics.items()):
                score[m, i, j], layer_x[m, i, j], layer_y[m, i, j] = best_of(layer_scores(metric, sv, sl, **params))
    import polars as pl

    words = pl.read_parquet(Path(level_dir) / "samples.parquet", columns=["words"])["words"].to_numpy()
    dims = ("metric", "vision", "language")
    attrs = {"level": record["level"], "dataset": record["dataset"], "level_fingerprint": record["fingerprint"]}
    attrs |= {"metrics": metrics, "quantile": quantile, "quantile_mode": quantile_mode, "concat_layers": concat_layers}
    variables = {"score": (dims, score), "layer_x": (dims, layer_x), "layer_y": (dims, layer_y)}
    return xr.Dataset(
        variables | {"words": ((), float(words.mean()))},
        coords={"metric": list(metrics), "vision": list(vision), "language": list(language)},
        attrs=as_attrs(attrs),
    )


def density_summary(levels: list) -> list[dict]:
    """Fig. 9's numbers from the levels' ``level_alignment`` Datasets, in level order: per metric and level,
    the mean caption length, the mean score over vision × language pairs and its standard deviation over
    language models (of each language model's mean over the vision models)."""
    rows = []
    for ds in levels:
        for metric in ds["metric"].values:
            per_language = ds["score"].sel(metric=metric).mean("vision").values
            rows.append({
                "metric": str(metric),
                "level": ds.attrs["level"],
                "words": float(ds["words"]),
                "mean": float(ds["score"].sel(metric=metric).mean()),
                "std": float(per_language.std(ddof=1)) if len(per_language) > 1 else float("nan"),
                "language_models": len(per_language),
                "vision_models": int(ds.sizes["vision"]),
            })  # fmt: skip
    return rows
