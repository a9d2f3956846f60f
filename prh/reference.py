"""Score your own representations against a finished run's models: ``prh.Reference(run, dataset)``.

A finished run holds, for each model of a dataset, its state store (what every metric needs from that model
alone) and the settings it aligned with. ``Reference.score`` brings a new model's features in as the workflow
brings in a configured model: written as a features store, its state computed with the run's settings, then
paired with each reference model's stored state (no reference work is redone) with the run's permutations and
half-samples. So each row equals what ``alignment.nc`` holds for a model of that name added by config (tested
to 1e-12), with the best score, its layers, the calibrated score, τ, the permutation p-value and the
half-sample interval; q-values are Benjamini–Hochberg over this table's rows (the references), where
``alignment.nc``'s are over all of the run's pairs.

``Reference.data`` gives the dataset's inputs in the run's order, for embedding them::

    ref = prh.Reference("path/to/run", "wit1024")
    images = ref.data("vision")            # uint8 (N, H, W, 3)
    table = ref.score(my_model(images))    # (N, D), (L, N, D) or a list of (N, D_l) arrays
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from prh.alignment.pairs import _check_parts as check_parts
from prh.alignment.pairs import pair_scores
from prh.alignment.states import compute_state, write_state
from prh.data.store import open_images, read_captions, read_record
from prh.io.features import FeatureWriter
from prh.io.provenance import as_attrs
from prh.io.representations import Representations, check_representations, storable
from prh.io.workflow import settings_of
from prh.metrics import METRICS, resolve_params
from prh.metrics.calibration import benjamini_hochberg

MODALITIES = {"vision": "vision", "image": "vision", "language": "language", "text": "language"}
COLUMNS = ("best", "last", "calibrated", "tau", "p_value", "ci_low", "ci_high", "null_mean")


def as_layers(features) -> list[np.ndarray]:
    """(N, D), (L, N, D) or a list of (N, D_l) arrays, numpy or torch, as a list of (N, D_l) arrays in the
    precision a features store holds (``prh.io.representations.storable``)."""
    if isinstance(features, (list, tuple)):
        items = list(features)
    elif np.ndim(features) == 3:
        items = [features[i] for i in range(features.shape[0])]
    elif np.ndim(features) == 2:
        items = [features]
    else:
        shape = np.shape(features)
        raise ValueError(f"features: expected (N, D), (L, N, D) or a list of (N, D_l); found shape {shape}")
    layers = [storable(item, f"features: layer {i}") for i, item in enumerate(items)]
    bad = next((i for i, layer in enumerate(layers) if layer.ndim != 2), None)
    if bad is not None:
        raise ValueError(f"features: layer {bad} has shape {layers[bad].shape}, not (N, D)")
    return layers


class Reference:
    """A finished run's models of one dataset as references to score new representations against.

    Parameters
    ----------
    run : str or Path
        The run's working directory (where ``results/`` is).
    dataset : str
        A dataset of the run.
    models : list of str, optional
        The reference models (default: every model of the dataset the run aligned).
    """

    def __init__(self, run: str | Path, dataset: str, models: list[str] | None = None):
        import xarray as xr
        import yaml

        self.run, self.dataset = Path(run), dataset
        aggregate = self.run / "results" / "alignment" / dataset / "alignment.nc"
        if not aggregate.is_file():
            raise ValueError(f"{aggregate}: no such file; is '{dataset}' a dataset of a finished run in {self.run}?")
        with xr.open_dataset(aggregate, engine="scipy") as ds:
            self.attrs = dict(ds.attrs)
            self.metric_params = json.loads(ds.attrs.get("metric_params", "{}"))
            modality = dict(zip(ds["model_x"].values.tolist(), ds["modality_x"].values.tolist()))
        unknown = [m for m in models or [] if m not in modality]
        if unknown:
            raise ValueError(f"models: {unknown} are not models of dataset '{dataset}' ({', '.join(modality)})")
        self.models = list(models or modality)
        self.modality = {m: modality[m] for m in self.models}
        self.config = yaml.safe_load((self.run / "results" / "config.yaml").read_text())
        self.record = read_record(self.run / "data" / dataset)

    def state_path(self, model: str) -> Path:
        """Where the run keeps a reference model's state store."""
        return self.run / "results" / "states" / self.dataset / f"{model}.zarr"

    def data(self, modality: str):
        """The dataset's inputs in the run's order: ``vision`` (or ``image``) an uint8 array (N, H, W, 3),
        ``language`` (or ``text``) the list of captions."""
        if modality not in MODALITIES:
            raise ValueError(f"modality '{modality}' is not one of {', '.join(MODALITIES)}")
        folder = self.run / "data" / self.dataset
        if self.record.get("contents") == "not downloaded":
            raise ValueError(
                f"dataset '{self.dataset}': the run downloaded nothing of it (every model was precomputed); add a "
                f"model that embeds it, or read {self.record.get('id')} yourself"
            )
        if MODALITIES[modality] == "vision":
            return np.asarray(open_images(folder)[...])
        if not (folder / "samples.parquet").is_file() or self.record.get("kind") == "places365":
            raise ValueError(f"dataset '{self.dataset}' has no captions")
        return read_captions(folder)

    def settings(self, metric: str, params: dict) -> tuple[dict, dict, dict]:
        """The metric's parameters (the run's, updated by ``params``) and the state and pair settings the
        run's jobs took (``settings_of`` on its resolved config, as its rules read them)."""
        if metric not in METRICS:
            raise ValueError(f"metric '{metric}' is unknown; known: {', '.join(sorted(METRICS))}")
        run_params = self.metric_params
        try:
            metric_params = resolve_params(metric, (run_params.get(metric) or {}) | params)
        except Exception as err:
            raise ValueError(f"metric '{metric}': bad parameters {params} ({err})") from err
        alignment = self.config["alignment"]
        state = settings_of("prh/alignment/states.py:compute_state", alignment)
        pair = settings_of("prh/alignment/pairs.py:pair_scores", alignment)
        state.pop("metrics", None)
        pair.pop("metrics", None)
        return {metric: metric_params}, state, pair

    def score(
        self,
        features,
        metric: str = "mutual_knn",
        *,
        name: str = "yours",
        modality: str = "vision",
        workers: int | None = None,
        **params,
    ):
        """Score ``features`` against every reference model with ``metric`` (its parameters: the run's, updated
        by ``params``). Returns a polars table, one row per reference model: ``best`` (over layer pairs), ``layer``
        and ``reference_layer`` (indices) with their names, ``last``, ``calibrated``, ``tau``, ``p_value``,
        ``q_value`` (Benjamini–Hochberg over the rows), ``ci_low``, ``ci_high`` and ``null_mean``. ``name``
        places the new model among the references as the workflow orders a pair (by name); ``workers``
        processes score the references (default: one per CPU), each pair as its own job would. Raises one
        ``ValueError`` for features of the wrong size or with NaN, an unknown metric or model."""
        import polars as pl

        if name in self.models:
            raise ValueError(f"name '{name}' is a reference model's; give your model another name")
        layers = as_layers(features)
        reps = Representations(layers, [f"layer.{i}" for i in range(len(layers))])
        check_representations(name, "features", reps, int(self.attrs["n_samples"]))
        metrics, state_settings, pair_settings = self.settings(metric, params)
        self._check_states(metrics)
        # the state holds what the run's metrics need, as its state jobs computed it: which parts it holds can
        # change a score (CKNNA's half-samples are row-centred exactly only with Gram matrices). SVCCA's
        # directions change no other metric's and need D >= dims: only when asked for.
        run_metrics = self.metric_params
        every = {m: resolve_params(m, p) for m, p in run_metrics.items() if m != "svcca"} | metrics
        with tempfile.TemporaryDirectory(prefix="prh-reference-") as tmp:
            state = self._state(Path(tmp), name, modality, layers, every, state_settings)
            rows = self._rows(state, name, metrics, pair_settings, workers or os.cpu_count() or 1)
        table = pl.DataFrame(rows)
        q = benjamini_hochberg(table["p_value"].to_numpy())
        return table.with_columns(pl.Series("q_value", q)).select(
            "reference", "modality", "metric", "best", "layer", "reference_layer", "layer_name",
            "reference_layer_name", "last", "calibrated", "tau", "p_value", "q_value", "ci_low", "ci_high", "null_mean",
        )  # fmt: skip

    def _check_states(self, metrics: dict) -> None:
        """Every reference state exists and holds what the metric needs, checked before any work as the pair
        job checks it (``prh.alignment.pairs``)."""
        import zarr

        for model in self.models:
            path = self.state_path(model)
            if not path.is_dir():
                raise ValueError(f"model '{model}': no state store {path}; was the run finished?")
            attrs = {
                k: json.loads(v) if k == "parts" else v for k, v in zarr.open_group(str(path), mode="r").attrs.items()
            }
            check_parts(path, attrs, metrics)

    def _state(self, folder: Path, name: str, modality: str, layers, metrics, settings) -> Path:
        """The new model's features store and state, as the embed and state jobs would write them."""
        dtype = "float16" if all(layer.dtype == np.float16 for layer in layers) else "float32"
        attrs = {"model": name, "modality": modality, "layer_names": [f"layer.{i}" for i in range(len(layers))],
                 "dataset": self.dataset, "dataset_fingerprint": self.record["fingerprint"], "storage_dtype": dtype,
                 "model_source": "prh.Reference"}  # fmt: skip
        store = folder / f"{name}.zarr"
        n = len(layers[0])
        with FeatureWriter(store, n, dtype=dtype, chunk=n, attrs=as_attrs(attrs)) as writer:
            writer.write(layers)
        state, _ = compute_state(store, metrics, **settings)
        return write_state(state, folder / f"{name}.state.zarr")

    def _rows(self, state: Path, name: str, metrics: dict, settings: dict, workers: int) -> list[dict]:
        """Every reference's row, in order; pairs are independent, so several processes share them."""
        jobs = [(state, name, model, metrics, settings) for model in self.models]
        if workers <= 1 or len(jobs) <= 1:
            return [self._row(*job) for job in jobs]
        from concurrent.futures import ProcessPoolExecutor

        import zarr

        # the deepest references first, so that no worker is left with a long pair at the end
        depth = {m: int(zarr.open_group(str(self.state_path(m)), mode="r").attrs["n_layers"]) for m in self.models}
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            futures = {job[2]: pool.submit(self._row, *job) for job in sorted(jobs, key=lambda j: -depth[j[2]])}
            return [futures[model].result() for model in self.models]

    def _row(self, state: Path, name: str, model: str, metrics: dict, settings: dict) -> dict:
        """One reference model against the new one, the pair oriented by name as the workflow orders it."""
        ref = self.state_path(model)
        new_first = name < model
        x, y = (state, ref) if new_first else (ref, state)
        data, _, attrs = pair_scores(x, y, metrics, **settings)
        d = 0 if new_first else 1  # the direction that reads the new model against the reference
        value = {v: float(data[v][1][0, d]) if v in data else float("nan") for v in COLUMNS}
        ours, theirs = ("best_layer_x", "best_layer_y") if new_first else ("best_layer_y", "best_layer_x")
        layer, reference_layer = int(data[ours][1][0, d]), int(data[theirs][1][0, d])
        names_ref = json.loads(attrs["layer_names_y" if new_first else "layer_names_x"])
        names_new = json.loads(attrs["layer_names_x" if new_first else "layer_names_y"])
        return {"reference": model, "modality": self.modality[model], "metric": next(iter(metrics)),
                "layer": layer, "reference_layer": reference_layer, "layer_name": names_new[layer],
                "reference_layer_name": names_ref[reference_layer]} | value  # fmt: skip
