"""Caption density (Fig. 9), the alignment of one level: every (vision, language) pair's best score over layer
pairs, the vision models' features read again for the level's samples. Kept apart from the levels' captions
(``prh.experiments.density.levels``) so that an edit to the metrics reruns the alignment and not the captions
or their embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.data.store import read_record


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

    from prh.io.features import check_store, read_layers
    from prh.io.provenance import as_attrs
    from prh.metrics.definitions import prepare_stack
    from prh.metrics.layerwise import LayerStates, best_of, layer_scores

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
