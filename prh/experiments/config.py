"""Config checks of the experiments: each ``prh.experiments.<name>.config`` module's ``problems(config)``,
found by name, so that a new experiment brings its checks in its own folder; and what those checks share."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def experiment_problems(config: dict) -> list[str]:
    """Every experiment's config problems, experiments in name order (``config`` validated by the schema).

    Parameters
    ----------
    config : dict
        The config, validated by the schema and with its defaults filled in.

    Returns
    -------
    list of str
        One message per problem, each naming its key.
    """
    problems = []
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda info: info.name):
        if info.ispkg and (Path(__file__).parent / info.name / "config.py").is_file():
            problems += importlib.import_module(f"prh.experiments.{info.name}.config").problems(config)
    return problems


def model_list_problems(config: dict, key: str, names: list[str], side: str, figure: str) -> list[str]:
    """A figure's list of models of one modality: each a model of that modality; an empty list (every model
    of it) needs at least one."""
    modality = {m["name"]: m["modality"] for m in config["models"]}
    precomputed = {m["name"] for m in config["models"] if m["source"] == "features"}
    problems = [f"{key}[{i}]: '{n}' is not a {side} model of models" for i, n in enumerate(names)
                if modality.get(n) != side]  # fmt: skip
    problems += [f"{key}[{i}]: '{n}' is a features model (its file holds one dataset); {figure} runs the model"
                 for i, n in enumerate(names) if n in precomputed]  # fmt: skip
    runnable = [m for m, kind in modality.items() if kind == side and m not in precomputed]
    if not names and not runnable:
        problems.append(f"{key}: {figure} needs a {side} model that runs (not a features model), and models has none")
    return problems
