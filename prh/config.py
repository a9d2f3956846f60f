"""Config validation: the JSON schema first (types, unknown keys, ranges; defaults filled in), then the
checks a schema cannot express (unique names, source-specific keys, k against dataset sizes).

Every problem found is reported in one ``ConfigError`` that names the key path and, for a model or a
dataset entry, its name, before any job runs.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from pathlib import Path

import yaml

from prh.experiments.config import experiment_problems
from prh.metrics.dense import dense_limit_message, dense_requirements

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
SOURCE_MODALITY = {"timm": "vision", "efficientnet_lite": "vision", "huggingface": "language", "wordllama": "language",
                   "features": None}  # fmt: skip
FEATURES_KEYS = ("url", "sha256", "dataset", "layer_names")  # the keys of source features only
HF_LOCATIONS = ("id", "path", "package")
WORLD = "world"  # the latent scenes Z of the shapes world, aligned to like a model


class ConfigError(ValueError):
    """The config is invalid; the message lists every problem with its key path."""


def _with_defaults():
    """A Draft 2020-12 validator that fills in ``default`` values of properties that are absent (jsonschema
    FAQ recipe). jsonschema is imported here: jobs that only read the config's helpers (a pair job) skip it."""
    from jsonschema import Draft202012Validator, validators

    validator_class = Draft202012Validator
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _where(config: dict, path) -> str:
    """``models[2] (model 'vit')`` style location of a key path."""
    text, parts = "", list(path)
    for i, part in enumerate(parts):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        if isinstance(part, int) and i == 1 and parts[0] in ("models", "datasets"):
            entry = config[parts[0]][part]
            if isinstance(entry, dict) and "name" in entry:
                text += f" ({parts[0][:-1]} '{entry['name']}')"
    return text or "(top level)"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.load(Path(path).read_text(), Loader=yaml.CSafeLoader)  # libyaml: the schema is read at every planning


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Check ``config``, fill in defaults (in place) and return it; raise ``ConfigError`` otherwise."""
    schema = load_schema() if schema is None else schema
    validator = _with_defaults()(schema)
    problems = [
        f"{_where(config, e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if not problems:
        from prh.experiments.ladder.rungs import ladder_problems

        problems = ladder_problems(config.get("training"), config["alignment"]["metrics"])
    if not problems:
        _fill_in(config)
        problems = _add_ladder(config, validator.schema) + _semantic_problems(config)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return config


def _fill_in(config: dict) -> None:
    """Defaults that depend on other keys, filled in before the checks (which only read)."""
    tasks = config["downstream"]["tasks"]  # a task set to null by a preset is dropped
    config["downstream"]["tasks"] = {name: task for name, task in tasks.items() if task is not None}
    sets = config["colour"]["sets"]  # likewise a colour set
    config["colour"]["sets"] = {name: words for name, words in sets.items() if words is not None}
    if config.get("probes"):  # Fig. 2's alignment: the first dataset unless named
        config["probes"]["alignment"].setdefault("dataset", config["datasets"][0]["name"])
    for model in config["models"]:  # a features file's rows follow one dataset: the first unless named
        if model["source"] == "features":
            model.setdefault("dataset", config["datasets"][0]["name"])


def model_control(spec: dict) -> str | None:
    """The control a model entry is (``random``, ``positive``) or None: its ``control``, else ``random`` for
    a seeded random initialisation (``pretrained: false``)."""
    return spec.get("control") or (None if spec.get("pretrained", True) else "random")


def _add_ladder(config: dict, schema: dict) -> list[str]:
    """Append the model entries of ``training.families`` (defaults filled in) to ``models``; idempotent, so
    a config validated twice keeps one entry per rung."""
    from prh.experiments.ladder.rungs import expand

    item = _with_defaults()(schema["properties"]["models"]["items"])
    present = {m["name"]: m for m in config["models"]}
    problems = []
    for rung in expand(config.get("training")).rungs.values():
        entry = rung.model_entry()
        list(item.iter_errors(entry))  # fills in the defaults
        if rung.name not in present:
            config["models"].append(entry)
        elif present[rung.name] != entry:
            problems.append(f"models: the name '{rung.name}' belongs to a rung of training.families")
    return problems


def fewest_permutations(alpha: float) -> int:
    """The least K for which the critical value τ (the ⌈(1 − α)(K + 1)⌉-th of K + 1 values) can lie below the
    observed score: with fewer, τ is the largest value and every calibrated score is 0."""
    k = 1
    while math.ceil((1.0 - alpha) * (k + 1)) > k:
        k += 1
    return k


def _null_problems(null: dict) -> list[str]:
    k, alpha = null["permutations"], null["alpha"]
    if 0 < k < (least := fewest_permutations(alpha)):
        return [
            f"alignment.null_distribution.permutations: {k} permutations cannot calibrate at alpha = {alpha} "
            f"(the critical value is then the largest score, so every calibrated score is 0); use at least "
            f"{least}, or 0 for no null"
        ]
    return []


def _semantic_problems(config: dict) -> list[str]:
    """What the schema cannot say: unique names, Fig. 3's corpus, each entry's keys, the probes, the dense limit,
    the null, every experiment's checks, and k against the datasets."""
    problems = [] if config["models"] else ["models: there is no model (list some, or train some in training.families)"]
    for section in ("models", "datasets"):
        counts = Counter(entry["name"] for entry in config[section])
        for name, n in counts.items():
            if n > 1:
                problems.append(f"{section}: the name '{name}' is used by {n} entries; names must be unique")
    lm = config["lm_score"]
    if lm.get("corpora") and lm["corpus"] not in lm["corpora"]:
        problems.append(f"lm_score.corpus: '{lm['corpus']}' (Fig. 3's) is not among lm_score.corpora {lm['corpora']}")
    problems += _model_problems(config) + _dataset_problems(config)
    problems += _probe_problems(config)
    problems += _dense_problems(config)
    problems += _null_problems(config["alignment"]["null_distribution"])
    if config["cluster"]["gpu_partition"] and not config["cluster"]["cpu_partition"]:
        problems.append("cluster.cpu_partition: with gpu_partition set, name the partition of model jobs without a GPU")
    problems += experiment_problems(config)
    return problems + _k_problems(config)


def _model_problems(config: dict) -> list[str]:
    """Each model entry: a modality its source gives, a name that is not reserved, the keys of its source."""
    problems = []
    for i, model in enumerate(config["models"]):
        where = f"models[{i}] (model '{model['name']}')"
        if model["source"] == "features":
            problems += _features_problems(config, where, model)
            continue
        expected = SOURCE_MODALITY[model["source"]]
        if given := [key for key in FEATURES_KEYS if key in model]:
            problems.append(f"{where}: {', '.join(given)} apply to models of source features only")
        if model["modality"] != expected:
            problems.append(
                f"{where}.modality: source '{model['source']}' gives {expected} models, not {model['modality']}"
            )
        if model["name"] == WORLD:
            problems.append(f"{where}.name: '{WORLD}' is reserved for the latent scenes of the shapes world")
        if model["source"] == "huggingface":
            given = [key for key in HF_LOCATIONS if key in model]
            if len(given) != 1:
                problems.append(
                    f"{where}: a huggingface model needs exactly one of id, path, package "
                    f"(given: {', '.join(given) or 'none'})"
                )
        elif (
            "id" not in model and model["source"] != "wordllama" and not (model["source"] == "timm" and "path" in model)
        ):
            problems.append(f"{where}.id: source '{model['source']}' needs the model's id")
        if model["source"] == "timm" and "path" in model and "id" in model:
            problems.append(f"{where}: a timm model is an id or a checkpoint path, not both")
        foreign = ("package", "gguf_file") + (() if model["source"] == "timm" else ("path",))
        if model["source"] != "huggingface" and any(key in model for key in foreign):
            problems.append(f"{where}: {', '.join(foreign)} apply to huggingface models only")
    return problems


def _features_problems(config: dict, where: str, model: dict) -> list[str]:
    """A ``source: features`` entry: one file (url or path), a configured dataset, no keys of a model that runs."""
    problems = []
    given = [key for key in ("url", "path") if key in model]
    if len(given) != 1:
        given_text = ", ".join(given) or "none"
        problems.append(f"{where}: a features model needs exactly one of url, path (given: {given_text})")
    names = [d["name"] for d in config["datasets"]]
    if model["dataset"] not in names:
        problems.append(f"{where}.dataset: '{model['dataset']}' is not a dataset ({', '.join(names)})")
    foreign = [key for key in ("package", "gguf_file", "revision", "prompt", "device_map") if key in model]
    if foreign:
        problems.append(f"{where}: {', '.join(foreign)} do not apply to a features model")
    if model["name"] == WORLD:
        problems.append(f"{where}.name: '{WORLD}' is reserved for the latent scenes of the shapes world")
    return problems


def precomputed_models(config: dict) -> list[str]:
    """The names of the models whose features are read from a file (``source: features``): they run nothing,
    so the jobs that run a model (probes, text sets, scored tasks, bits-per-byte on a corpus) skip them."""
    return [m["name"] for m in config["models"] if m["source"] == "features"]


def declared_datasets(config: dict) -> list[str]:
    """Hub datasets no job reads the images or captions of (every model that embeds them is precomputed, and
    no figure reads their captions): the run writes their record only and downloads nothing of them."""
    from prh.data.store import has_captions

    runs = [m for m in config["models"] if m["source"] != "features"]
    density = (config.get("density") or {}).get("dataset")
    return [d["name"] for d in config["datasets"] if d["kind"] != "shapes" and d["name"] != density
            and not any(m["modality"] == "vision" or has_captions(d["kind"]) for m in runs)]  # fmt: skip


def _dataset_problems(config: dict) -> list[str]:
    """Each dataset entry: the keys of its kind; a size for a dataset whose record is all the run writes."""
    problems = []
    declared = declared_datasets(config)
    for i, dataset in enumerate(config["datasets"]):
        where = f"datasets[{i}] (dataset '{dataset['name']}')"
        if dataset["name"] in declared and "size" not in dataset:
            problems.append(
                f"{where}.size: every model of this dataset is precomputed, so nothing of it is downloaded; give "
                f"its number of samples (the rows of the features files), e.g. 1024 for WIT-1024"
            )
        if dataset["kind"] == "shapes" and any(key in dataset for key in ("id", "path", "revision")):
            problems.append(f"{where}: id, revision and path apply to hub datasets, not the generated shapes world")
        if dataset["kind"] == "hf_image_text" and not (dataset.get("id") or dataset.get("path")):
            problems.append(f"{where}: a hub dataset needs an id (with a revision) or a path")
        hub_keys = ("id", "revision", "path")
        if dataset["kind"] == "places365" and any(key in dataset for key in hub_keys):
            problems.append(f"{where}: {', '.join(hub_keys)} apply to hub datasets; places365 reads files from root")
        if dataset["kind"] != "places365" and any(key in dataset for key in ("root", "small", "download")):
            problems.append(f"{where}: root, small and download apply to places365 only")
    return problems


def _k_problems(config: dict) -> list[str]:
    """Each metric's k and dims against the smallest dataset of known size."""
    problems = []
    sized = [d for d in config["datasets"] if "size" in d]  # hub datasets without size: N known after import
    if not sized:
        return problems
    smallest = min(sized, key=lambda d: d["size"])
    for name, params in config["alignment"]["metrics"].items():
        k = params.get("k")
        if k is not None and k > smallest["size"] - 1:
            problems.append(
                f"alignment.metrics.{name}.k: k = {k} needs at least k + 1 samples, but dataset "
                f"'{smallest['name']}' has {smallest['size']}"
            )
        if name == "unbiased_cka" and smallest["size"] < 4:
            problems.append(f"alignment.metrics.unbiased_cka: needs at least 4 samples, '{smallest['name']}' has fewer")
        dims = params.get("dims")
        if dims is not None and dims > smallest["size"]:
            problems.append(f"alignment.metrics.{name}.dims: {dims} directions need at least as many samples")
    return problems


def _dense_problems(config: dict) -> list[str]:
    """Datasets larger than ``alignment.dense_limit`` with a metric (or figure) that needs N × N matrices."""
    alignment = config["alignment"]
    limit = alignment["dense_limit"]
    needs = dense_requirements(
        alignment["metrics"], alignment["null_distribution"]["permutations"], alignment["bootstrap"]["resamples"]
    )
    problems = []
    for dataset in config["datasets"]:
        n = dataset.get("size", 0)
        if n <= limit:
            continue
        if needs:
            problems.append(dense_limit_message(f"datasets '{dataset['name']}': ", n, limit, needs))
        if config.get("figures", {}).get("cknna_k"):
            problems.append(
                f"figures.cknna_k: CKNNA against k ranks all N = {n} samples of dataset '{dataset['name']}' "
                f"(above alignment.dense_limit = {limit}); set figures.cknna_k: [] to skip that figure"
            )
    return problems


PROBE_KIND_KEYS = {
    "vtab": (
        "id",
        "revision",
        "path",
        "image_column",
        "label_column",
        "image_size",
        "max_train",
        "max_val",
        "max_test",
        "fit_split",
        "test_split",
    ),
    "shapes": ("attribute", "bins", "size", "train", "val"),
    "digits": ("size", "train", "val"),
    "mnist": ("size", "train", "val"),
}
PROBE_DEFAULTED = (
    "bins",
    "image_column",
    "label_column",
    "image_size",
    "max_train",
    "max_val",
    "train",
    "val",
    "fit_split",
    "test_split",
)


def _probe_problems(config: dict) -> list[str]:
    probes = config.get("probes")
    if not probes:
        return []
    problems = []
    counts = Counter(task["name"] for task in probes["tasks"])
    problems += [f"probes.tasks: the name '{n}' is used by {c} entries" for n, c in counts.items() if c > 1]
    for i, task in enumerate(probes["tasks"]):
        where = f"probes.tasks[{i}] (task '{task['name']}')"
        allowed = set(PROBE_KIND_KEYS[task["kind"]]) | {"name", "kind", "seed"}
        foreign = [key for key in task if key not in allowed and key not in PROBE_DEFAULTED]
        if foreign:
            problems.append(f"{where}: {', '.join(foreign)} do not apply to kind '{task['kind']}'")
        if task["kind"] != "vtab" and task["train"] + task["val"] >= 1:
            problems.append(f"{where}: train + val = {task['train'] + task['val']:g} leaves no test split")
        if task["kind"] == "vtab" and bool(task.get("path")) == bool(task.get("id")):
            problems.append(f"{where}: a vtab task needs a hub id (with a revision) or a path, not both")
        if task["kind"] == "vtab" and task.get("id") and not task.get("revision"):
            problems.append(f"{where}.revision: pin the hub revision of {task['id']}")
    names = [d["name"] for d in config["datasets"]]
    alignment = probes["alignment"]
    if alignment["dataset"] not in names:
        problems.append(f"probes.alignment.dataset: '{alignment['dataset']}' is not a dataset ({', '.join(names)})")
    if alignment["metric"] not in config["alignment"]["metrics"]:
        problems.append(
            f"probes.alignment.metric: '{alignment['metric']}' is not computed; alignment.metrics has "
            f"{', '.join(config['alignment']['metrics'])}"
        )
    if sum(m["modality"] == "vision" and m["source"] != "features" for m in config["models"]) < 1:
        problems.append("probes: there are no vision models to probe (a features model is not run; set probes: null)")
    return problems
