import json
import re
from itertools import combinations
from pathlib import Path

from prh.config import (
    WORLD,
    declared_datasets,
    load_schema,
    model_control,
    precomputed_models,
    validate_config,
)
from prh.data.corpora import STORED, scored_corpora, text_corpora
from prh.data.store import has_captions
from prh.experiments.ladder.rungs import (
    expand as expand_ladder,
)  # not snakemake's expand
from prh.preflight import references as hub_references
from prh.preflight import preflight_job
from prh.preflight import renewed_report, write_report
from prh.resources import (
    DOWNSTREAM_BATCH,
    job_tokens,
    logits_bytes,
    model_job,
    model_parameters,
    retry_runtime,
    store_state_mem_mb,
)
from prh.io.fetch import fetch_targets, jobs_read_the_cache
from prh.io.provenance import run_provenance, share_git_state
from prh.io.workflow import library_modules, settings_of
from prh.io.scheduler import one_pending_wakeup

one_pending_wakeup()  # else the scheduler wakes once a second per finished job (prh/io/scheduler.py)

REPO = Path(workflow.basedir)
share_git_state(REPO)  # the jobs' provenance: git asked once per run, not twice per job

# Validate before anything else: a bad config stops here, naming the key or the model.
validate_config(config, load_schema(REPO / "schemas" / "config.schema.yaml"))

DATASETS = {d["name"]: d for d in config["datasets"]}
# Trained rungs are in config["models"] already (validate_config expands training.families).
LADDER = expand_ladder(config.get("training"))
MODELS = {m["name"]: m for m in config["models"]}
LANGUAGE_MODELS = [name for name, m in MODELS.items() if m["modality"] == "language"]
# Controls of the trends (untrained models, the positive control): references, not points of ρ
CONTROLS = {name: model_control(m) for name, m in MODELS.items() if model_control(m)}
VISION_MODELS = [name for name, m in MODELS.items() if m["modality"] == "vision"]
# Models read from a file (source: features): they run nothing, so jobs that run a model skip them.
PRECOMPUTED = precomputed_models(config)
RUNNABLE_LANGUAGE = [m for m in LANGUAGE_MODELS if m not in PRECOMPUTED]
RUNNABLE_VISION = [m for m in VISION_MODELS if m not in PRECOMPUTED]
# Hub datasets whose every model is precomputed: their record only, nothing downloaded.
DECLARED = declared_datasets(config)
PROBE_TASKS = {t["name"]: t for t in (config.get("probes") or {}).get("tasks", [])}
# Language models embed captions: a dataset without them (Places-365) is embedded by vision models only.
DATASET_MODELS = {
    dataset: [
        name
        for name, m in MODELS.items()
        if (m["modality"] == "vision" or has_captions(spec["kind"]))
        and m.get("dataset", dataset) == dataset  # a features file holds one dataset
    ]
    for dataset, spec in DATASETS.items()
}
# The shapes world knows every scene's latent Z: it joins the dataset as one more "model" to align to.
for dataset, spec in DATASETS.items():
    if spec["kind"] == "shapes" and config["alignment"]["world"]:
        DATASET_MODELS[dataset].append(WORLD)


wildcard_constraints:
    # Features of a probe task live beside the datasets' ones: results/features/probes/{task}/{model}.zarr
    dataset="|".join(
        [re.escape(d) for d in DATASETS]
        + [re.escape(f"probes/{t}") for t in PROBE_TASKS]
    ),
    task="|".join(re.escape(t) for t in PROBE_TASKS) or "(?!)",
    mc_task="|".join(re.escape(t) for t in config["downstream"]["tasks"]) or "(?!)",
    level="|".join(re.escape(level) for level in config["density"]["levels"]),
    # a text set only language models read: data/texts/{texts}, results/texts/{texts}/{model}.zarr
    texts=r"density/[^/]+/[^/]+|colours/[^/]+",
    colour_set="|".join(re.escape(s) for s in config["colour"]["sets"]) or "(?!)",
    model="[^/]+",
    model_x="[^/]+",
    model_y="[^/]+",


# What reads the hub waits for preflight (ancient: a new report reruns nothing). Changed references are
# checked again while planning (a bad one stops even a dry run) and the new report is written when a run
# starts, before any job: a dry run writes nothing.
PREFLIGHT = ancient("results/preflight.json")
HUB_REFERENCES = hub_references(config)
RENEWED_PREFLIGHT = renewed_report(
    "results/preflight.json", HUB_REFERENCES, hub=config["hub"]
)


onstart:
    if RENEWED_PREFLIGHT is not None:
        write_report(
            "results/preflight.json",
            RENEWED_PREFLIGHT,
            run_provenance(config, REPO),
        )


# The fetch stage (rules/fetch.smk) downloads each hub repository once, before the jobs that read it, which
# read the cache only (HF_HUB_OFFLINE=1); preflight and fetch ask the hub as the user set it.
FETCH = fetch_targets(config, HUB_REFERENCES)
jobs_read_the_cache(config["hub"]["cache"])


def fetched(section, wildcard=None):
    """An input function: the fetch manifest of ``{section}/{name}`` (``name``: the job's ``wildcard``, or
    none for a section that is one repository), where that is a hub repository the run reads.
    """

    def inputs(wildcards):
        target = f"{section}/{getattr(wildcards, wildcard)}" if wildcard else section
        return [f"results/fetch/{target}.json"] if target in FETCH else []

    return inputs


def model_resources(rule, spec_of=lambda wildcards: MODELS[wildcards.model]):
    """A model job's cluster resources from the model's size: ``mem_mb``, ``gpu`` and ``runtime`` from its
    ``params``, else what preflight resolved for a hub model (read once preflight has run), else the
    defaults; a scoring job's GPUs hold its logits too. A job that holds GPUs runs on one node, in the
    configured GPU partition, type and constraint; each retry gets a longer time limit.
    """
    embedding, cluster = config["embedding"], config["cluster"]
    defaults = {"mem_mb": 6000, "gpu": embedding["gpus"], "runtime": 240}
    # a features model's jobs read a file: no model, no GPU
    precomputed = {"mem_mb": 4000, "gpu": 0, "runtime": 30}
    # scoring jobs hold a batch's logits over the whole vocabulary
    lm = config["lm_score"]
    logits = {
        "lm_score": logits_bytes(lm["batch_size"], lm["context"]),
        "downstream_score": logits_bytes(*DOWNSTREAM_BATCH),
    }.get(rule, 0)

    def sized(wildcards, input):
        spec = spec_of(wildcards)
        if spec["source"] == "features":
            return precomputed
        preflight = None
        if (
            not spec.get("params")
            and spec.get("id")
            and spec["source"] == "huggingface"
        ):
            preflight = json.loads(Path(input.preflight).read_text())
        parameters = model_parameters(spec, preflight)
        if parameters is None:
            return defaults
        return model_job(
            parameters,
            spec["compute_dtype"],
            job_tokens(config)[rule],
            embedding["gpus"],
            embedding["gpu_memory_gb"],
            logits,
        )

    resources = {
        "mem_mb": lambda wildcards, input: sized(wildcards, input)["mem_mb"],
        "gpu": lambda wildcards, input: sized(wildcards, input)["gpu"],
        "runtime": lambda wildcards, input, attempt: retry_runtime(
            sized(wildcards, input)["runtime"],
            attempt,
            cluster["retry_runtime_factor"],
        ),
        "nodes": 1,  # GPUs of one job on one node: the model is split over them in one process
        # GPU type and node features: None (unset) for a job that holds none
        "gpu_model": lambda wildcards, input: (
            cluster["gpu_model"] if sized(wildcards, input)["gpu"] else None
        ),
        "constraint": lambda wildcards, input: (
            cluster["constraint"] if sized(wildcards, input)["gpu"] else None
        ),
    }
    if cluster["gpu_partition"]:
        resources["slurm_partition"] = lambda wildcards, input: (
            cluster["gpu_partition"]
            if sized(wildcards, input)["gpu"]
            else cluster["cpu_partition"]
        )
    return resources


def transfer_resources():
    """The fetch jobs' partition, where the config names one (else they are local rules)."""
    partition = config["cluster"]["transfer_partition"]
    return {"slurm_partition": partition, "runtime": 240} if partition else {}


def modality(model):
    return "world" if model == WORLD else MODELS[model]["modality"]


def checkpoint_of(wildcards):
    """A model read from a local folder (the ladder's checkpoints among them) depends on that folder."""
    path = MODELS[wildcards.model].get("path")
    return [path] if path else []


def library_of(script):
    """The prh modules ``scripts/{script}`` imports, directly or not: editing one reruns the rule (mtime)."""
    return library_modules(REPO / "scripts" / script, REPO)


def model_pairs(dataset):
    """Unordered pairs of the dataset's models, names sorted, so adding a model never renames a pair."""
    return list(combinations(sorted(DATASET_MODELS[dataset]), 2))


def cross_modal_pairs(dataset):
    """Vision-language pairs (the world is neither)."""
    return [
        (x, y)
        for x, y in model_pairs(dataset)
        if {modality(x), modality(y)} == {"vision", "language"}
    ]


def dataset_models(wildcards):
    """Name and modality of every model that embeds the dataset (and the world, where it is known)."""
    return [
        {"name": m, "modality": modality(m)} for m in DATASET_MODELS[wildcards.dataset]
    ]


def packaged_models(wildcards):
    """The dataset's models that are not rungs of the ladder (Fig. 10 ranks every sample of each layer)."""
    return [m for m in dataset_models(wildcards) if m["name"] not in LADDER.rungs]


def probe_files(wildcards):
    return [f"results/probes/models/{model}.parquet" for model in RUNNABLE_VISION]


def dataset_inputs(wildcards):
    """What a model reads from a dataset: images for vision, captions for language."""
    folder = f"data/{wildcards.dataset}"
    main = (
        "images.zarr"
        if MODELS[wildcards.model]["modality"] == "vision"
        else "samples.parquet"
    )
    inputs = {"data": f"{folder}/{main}", "record": f"{folder}/dataset.json"}
    return inputs | {"checkpoint": checkpoint_of(wildcards)}


def pair_files(wildcards):
    return [
        f"results/alignment/{wildcards.dataset}/pairs/{x}/{y}.nc"
        for x, y in model_pairs(wildcards.dataset)
    ]


# Datasets with trends (two models or more): their tables feed the results page.
TREND_DATASETS = [
    dataset for dataset, models in DATASET_MODELS.items() if len(models) >= 2
]
# Tables an experiment adds to the results page ({"family": path}: the ladder's families).
RESULT_TABLES = {}
# Each experiment's rules file (rules/<experiment>.smk) adds its final outputs here.
EXPERIMENT_OUTPUTS = []


def all_outputs(with_costs=True):
    """Every final output; ``results/job_costs.parquet`` (which reads the others' benchmark files) last."""
    outputs = ["results/config.yaml", PREFLIGHT]
    for dataset, models in DATASET_MODELS.items():
        figures = f"results/figures/{dataset}"
        outputs += [f"results/features/{dataset}/{model}.zarr" for model in models]
        if len(models) < 2:
            continue
        outputs += [
            f"results/alignment/{dataset}/alignment.nc",
            f"{figures}/best_alignment.png",
            f"{figures}/metric_agreement.png",
        ]
        if (
            len(dataset_vision_models(dataset)) >= 3
            and config["figures"]["agreement"]["k"]
        ):
            outputs.append(f"{figures}/metric_variants.png")
        pairs = cross_modal_pairs(dataset)
        if pairs:
            # layer x layer matrices and Fig. 10 of the packaged models; the rungs have few layers each
            packaged = [
                (x, y)
                for x, y in pairs
                if x not in LADDER.rungs and y not in LADDER.rungs
            ]
            outputs += [f"{figures}/layers/{x}/{y}.png" for x, y in packaged]
            if packaged:
                outputs.append(f"{figures}/cknna_versus_k.png")
            outputs += [
                f"{figures}/cross_modal_metrics.png",
                f"{figures}/alignment_versus_lm_score.png",
            ]
    if LANGUAGE_MODELS:
        outputs.append("results/lm_scores.parquet")
    if PROBE_TASKS and RUNNABLE_VISION:
        figures = f"results/figures/{config['probes']['alignment']['dataset']}"
        outputs += ["results/probes/competence.parquet"]
        outputs += [f"{figures}/competence_alignment.png"]
        if len(RUNNABLE_VISION) >= 3:
            outputs.append(f"{figures}/model_umap.png")
    for dataset in TREND_DATASETS:
        models = DATASET_MODELS[dataset]
        figures = f"results/figures/{dataset}"
        outputs.append(f"results/trends/{dataset}.parquet")
        outputs.append(f"{figures}/trend_calibration.png")
        if WORLD in models:
            outputs.append(f"{figures}/world_alignment.png")
    if TREND_DATASETS:
        outputs.append("results/results.md")
    outputs += EXPERIMENT_OUTPUTS
    if with_costs:
        outputs += ["results/job_costs.parquet", "results/figures/job_costs.png"]
    return outputs


# The metric of the trends (Fig. 2, Fig. 3, the world, the families): Fig. 2's, else mutual k-NN, else the first.
TREND_METRIC = (config.get("probes") or {}).get("alignment", {}).get("metric") or (
    "mutual_knn"
    if "mutual_knn" in config["alignment"]["metrics"]
    else next(iter(config["alignment"]["metrics"]))
)


def trend_inputs(wildcards):
    """The aggregate, competence, language-model scores and the features stores (parameter counts)."""
    stores = [
        f"results/features/{wildcards.dataset}/{m}.zarr"
        for m in DATASET_MODELS[wildcards.dataset]
    ]
    inputs = {
        "alignment": f"results/alignment/{wildcards.dataset}/alignment.nc",
        "features": stores,
    }
    if PROBE_TASKS and RUNNABLE_VISION:
        inputs["competence"] = "results/probes/competence.parquet"
    if LANGUAGE_MODELS:
        inputs["scores"] = "results/lm_scores.parquet"
    return inputs


def fig2_inputs(wildcards):
    return {
        "competence": "results/probes/competence.parquet",
        "alignment": f"results/alignment/{wildcards.dataset}/alignment.nc",
    }


def dataset_vision_models(dataset):
    """The vision models of a dataset (Fig. 12's pairs), names sorted."""
    return sorted(m for m in DATASET_MODELS[dataset] if modality(m) == "vision")
