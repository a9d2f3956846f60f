"""Preflight: every hub reference and local path of a run, checked before any model job.

``references`` lists what a validated config will read: hub models (id, revision, a GGUF file), timm
architectures and their pretrained weights, hub datasets (id, revision, the splits and columns or data
files each loader reads) and local paths. ``check`` resolves them with ``huggingface_hub`` metadata calls
only (``model_info`` / ``dataset_info`` with file sizes, ``auth_check`` for gated repos; nothing is
downloaded) and returns what it resolved (revisions as commit hashes, weight sizes, parameter counts) and
every problem, each with its config key. ``preflight`` raises one ``PreflightError`` naming all of them.

With ``hub.offline`` or ``HF_HUB_OFFLINE`` set, hub references are checked in the local hub cache
instead, file by file; an unreachable hub is an error that says how to go on, never a skip. ``pin_config``
writes a config whose revisions are the commits a preflight resolved, so a later run reads exactly those.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prh.data.corpora import scored_corpora
from prh.io.fetch import dataset_files, model_files, split_files

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".gguf")
HUB = "https://huggingface.co"


class PreflightError(RuntimeError):
    """Hub references or local paths a run cannot read; the message lists every one with its config key."""


@dataclass(frozen=True)
class Reference:
    """One thing a run reads. ``where`` is the config key path (for messages and for pinning)."""

    key: str
    kind: str  # model | dataset | timm | path | features (a url; revision: its sha256; files: the cache)
    id: str
    revision: str | None = None
    splits: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    pretrained: bool = True
    where: tuple = field(default=(), compare=False)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _model_key(i: int, name: str) -> str:
    return f"models[{i}] (model '{name}')"


def references(config: dict) -> list[Reference]:
    """Everything a validated ``config`` reads from the hub or the disk, in config order."""
    sections = (_model_references, _dataset_references, _probe_references, _downstream_references,
                _summariser_references, _corpus_references, _colour_references)  # fmt: skip
    return [ref for section in sections for ref in section(config)]


def _model_references(config: dict) -> list[Reference]:
    """The models' hub ids and local paths (not the ladder's rungs: the workflow trains them)."""
    from prh.experiments.ladder.rungs import CHECKPOINTS

    refs: list[Reference] = []
    for i, m in enumerate(config["models"]):
        if str(m.get("path", "")).startswith(CHECKPOINTS):  # a rung of the ladder: the workflow trains it
            continue
        key, where = _model_key(i, m["name"]), ("models", i)
        gguf = (m["gguf_file"],) if m.get("gguf_file") else ()
        if m["source"] == "huggingface" and m.get("id"):
            refs.append(Reference(key, "model", m["id"], m.get("revision", "main"), files=gguf,
                                  pretrained=m.get("pretrained", True), where=where))  # fmt: skip
        elif m["source"] == "timm" and m.get("id"):
            refs.append(Reference(key, "timm", m["id"], pretrained=m.get("pretrained", True), where=where))
        if m["source"] == "features" and m.get("url"):  # revision: the file's sha256; files: the cache it lands in
            cache = (config.get("precomputed") or {}).get("cache", "data/downloads/features")
            refs.append(Reference(key + ".url", "features", m["url"], m.get("sha256"), files=(cache,), where=where))
        if m.get("path"):
            refs.append(Reference(key + ".path", "path", m["path"], files=gguf, where=where))
    return refs


def _dataset_references(config: dict) -> list[Reference]:
    """The datasets' hub ids and local paths."""
    from prh.config import declared_datasets

    refs: list[Reference] = []
    declared = declared_datasets(config)  # nothing of them is read: their record is written from the config
    for i, d in enumerate(config["datasets"]):
        key, where = f"datasets[{i}] (dataset '{d['name']}')", ("datasets", i)
        if d["name"] in declared:
            continue
        if d.get("id"):
            columns = (d.get("image_column", "image"), d.get("text_column", "text"))
            refs.append(Reference(key, "dataset", d["id"], d["revision"], (d["split"],), columns, where=where))
        elif d.get("path"):
            refs.append(Reference(key + ".path", "path", d["path"], where=where))
        elif d["kind"] == "places365" and not d.get("download", True):
            refs.append(Reference(key + ".root", "path", d["root"], where=where))
    return refs


def _probe_references(config: dict) -> list[Reference]:
    """The VTAB probe tasks' hub ids and local paths."""
    refs: list[Reference] = []
    for i, t in enumerate((config.get("probes") or {}).get("tasks", [])):
        if t["kind"] != "vtab":
            continue
        key, where = f"probes.tasks[{i}] '{t['name']}'", ("probes", "tasks", i)
        splits = tuple(dict.fromkeys((t.get("fit_split", "train"), t.get("test_split", "test"))))
        if t.get("id"):
            columns = (t.get("image_column", "webp"), t.get("label_column", "cls"))
            refs.append(Reference(key, "dataset", t["id"], t["revision"], splits, columns, where=where))
        else:
            refs.append(Reference(key + ".path", "path", t["path"], where=where))
    return refs


def _downstream_references(config: dict) -> list[Reference]:
    """Fig. 4's HellaSwag on the hub, and the tasks' local tables."""
    refs: list[Reference] = []
    for name, task in config["downstream"]["tasks"].items():
        key, where = f"downstream.tasks.{name}", ("downstream", "tasks", name)
        if task["kind"] == "hellaswag" and task.get("id"):
            from prh.experiments.downstream.tasks import HELLASWAG_COLUMNS as columns

            refs.append(Reference(key, "dataset", task["id"], task.get("revision", "main"),
                                  (task.get("split", "validation"),), columns, where=where))  # fmt: skip
        for path_key in ("path", "table"):
            if task.get(path_key):
                from prh.experiments.downstream.tasks import resolve_table  # the presets' tables ship in the repository

                where_found = task[path_key] if task["kind"] == "hellaswag" else str(resolve_table(task[path_key]))
                refs.append(Reference(f"{key}.{path_key}", "path", where_found, where=where))
    return refs


def _summariser_references(config: dict) -> list[Reference]:
    """Fig. 9's summariser (App. E)."""
    from prh.experiments.ladder.rungs import CHECKPOINTS

    refs: list[Reference] = []
    summaries = config["density"]["summaries"] if config["density"]["dataset"] else None
    if summaries:
        m, key = summaries["model"], "density.summaries.model"
        if m.get("id"):
            refs.append(
                Reference(key, "model", m["id"], m.get("revision", "main"), where=("density", "summaries", "model"))
            )
        elif m.get("path") and not str(m["path"]).startswith(CHECKPOINTS):
            refs.append(Reference(key + ".path", "path", m["path"], where=("density", "summaries", "model")))
    return refs


def _corpus_references(config: dict) -> list[Reference]:
    """The bits-per-byte corpus on the hub (OpenWebText), or its local copy."""
    refs: list[Reference] = []
    lm = config["lm_score"]
    if "openwebtext" in scored_corpora(lm):
        if lm.get("corpus_path"):
            refs.append(Reference("lm_score.corpus_path", "path", lm["corpus_path"], where=("lm_score",)))
        else:
            hub = lm["corpus_hub"]
            files = tuple(hub["data_files"])
            refs.append(Reference("lm_score.corpus_hub", "dataset", hub["id"], hub["revision"], (), ("text",), files,
                                  where=("lm_score", "corpus_hub")))  # fmt: skip
    return refs


def _colour_references(config: dict) -> list[Reference]:
    """Fig. 8's images on the hub."""
    refs: list[Reference] = []
    images = config["colour"]["images"] if config["colour"]["sets"] else {}
    if images.get("kind") == "huggingface":
        if images.get("id"):
            refs.append(Reference("colour.images", "dataset", images["id"], images.get("revision", "main"),
                                  (images.get("split", "train"),), (images.get("image_column", "image"),),
                                  where=("colour", "images")))  # fmt: skip
        elif images.get("path"):
            refs.append(Reference("colour.images.path", "path", images["path"], where=("colour", "images")))
    return refs


# ---------------------------------------------------------------------------------------------- local
def check_path(ref: Reference, root: Path) -> list[str]:
    """A local path (relative to ``root``) exists, and so does each file it must hold (a GGUF file)."""
    path = Path(ref.id) if Path(ref.id).is_absolute() else root / ref.id
    if not path.exists():
        return [f"{ref.key}: '{ref.id}' does not exist"]
    return [f"{ref.key}: '{ref.id}' has no file '{f}'" for f in ref.files if not (path / f).is_file()]


def check_features(ref: Reference, root: Path) -> tuple[list[str], dict]:
    """A features file's URL answers with its size (``HEAD``, nothing downloaded; ``file://``: the file exists).
    Unreachable, it passes only when a copy whose sha256 the config gives is in the cache. Returns the
    problems and what was resolved (``bytes``, or ``cached``)."""
    import requests

    from prh.io.download import DownloadError, cache_name, is_remote, local_path, remote_size, sha256_of

    if not is_remote(ref.id):
        path = local_path(ref.id)
        path = path if path.is_absolute() else root / path
        return ([] if path.exists() else [f"{ref.key}: '{ref.id}' does not exist"]), {}
    try:
        return [], {"bytes": remote_size(ref.id)}
    except DownloadError as err:
        return [f"{ref.key}: {err}"], {}
    except requests.RequestException as err:
        cached = Path(ref.files[0]) / cache_name(ref.id)
        cached = cached if cached.is_absolute() else root / cached
        if ref.revision and cached.is_file() and sha256_of(cached) == ref.revision.lower():
            return [], {"cached": str(cached)}
        return [f"{ref.key}: '{ref.id}' cannot be reached ({err.__class__.__name__}) and no copy with its sha256 "
                f"is in the cache {ref.files[0]}"], {}  # fmt: skip


def check_timm(ref: Reference) -> tuple[list[str], Reference | None]:
    """A timm id is a registered architecture, and a pretrained one has pretrained weights under that tag.
    Returns the problems and, for pretrained weights on the hub, the hub model that holds them."""
    import timm

    arch = ref.id.split(".", 1)[0]
    if not timm.is_model(arch):
        from difflib import get_close_matches

        close = get_close_matches(arch, timm.list_models(), n=3, cutoff=0.85)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return [f"{ref.key}: '{ref.id}' is not a timm architecture{hint}"], None
    unreadable = _timm_layers_problem(arch)
    if unreadable:
        return [f"{ref.key}: {unreadable}"], None
    if not ref.pretrained:
        return [], None
    if ref.id not in timm.list_pretrained(ref.id) and not ("." not in ref.id and timm.list_pretrained(f"{arch}.*")):
        tags = timm.list_pretrained(f"{arch}.*")[:8]
        return [f"{ref.key}: timm has no pretrained weights '{ref.id}' (it has: {', '.join(tags) or 'none'})"], None
    cfg = timm.models.get_pretrained_cfg(ref.id)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        return [], None
    return [], Reference(ref.key, "model", hub_id, "main", where=ref.where)


def _timm_layers_problem(arch: str) -> str | None:
    """Why the workflow cannot read the layers of a timm architecture (``timm_layer_source``), from the model
    built on the meta device (no memory, no weights); None when it can, or when it cannot be built so here."""
    import timm
    import torch

    from prh.models.loading import timm_layer_source

    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False)
    except Exception:  # the embedding job builds it for real and checks again
        return None
    try:
        timm_layer_source(model)
    except ValueError as err:
        return str(err)
    return None


# ---------------------------------------------------------------------------------------------- hub
def weight_files(siblings) -> list:
    """The weight files of a repo: safetensors where there are any, else PyTorch pickles (or GGUF)."""
    files = [s for s in siblings or [] if s.rfilename.endswith(WEIGHT_SUFFIXES)]
    for suffix in (".safetensors", ".bin", ".pth", ".pt"):
        chosen = [s for s in files if s.rfilename.endswith(suffix) and "optimizer" not in s.rfilename]
        if chosen:
            return chosen
    return files


def _card(info) -> dict:
    """The YAML header of a repo's card as a dict (``CardData.to_dict``)."""
    return info.card_data.to_dict() if info.card_data is not None else {}


def _dataset_info(card: dict) -> dict:
    """The card's ``dataset_info`` (the first config's where it lists several), or {}."""
    dataset_info = card.get("dataset_info")
    if isinstance(dataset_info, list):
        dataset_info = dataset_info[0] if dataset_info else None
    return dataset_info if isinstance(dataset_info, dict) else {}


def split_names(info) -> list[str]:
    """The splits a hub dataset offers, as ``datasets`` finds them: the card's ``configs`` data files, else
    its ``dataset_info.splits``, else the split patterns of ``datasets`` over the repo's file names."""
    card = _card(info)
    names = [s.rfilename for s in info.siblings or []]
    if any(c.get("data_files") for c in card.get("configs") or []) and (found := split_files(names, card)):
        return list(found)
    if splits := _dataset_info(card).get("splits"):
        return [s["name"] for s in splits]
    return list(split_files(names, {}))


def column_names(info) -> list[str] | None:
    """The columns the card lists (``dataset_info.features``), or None where it lists none."""
    features = _dataset_info(_card(info)).get("features")
    if not features:
        return None
    return [f["name"] for f in features if isinstance(f, dict) and "name" in f]


def _gated_problem(ref: Reference, api, token, repo_type: str) -> str | None:
    """None when the token may read the gated repo; else what to do about it."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    page = f"{HUB}/{'datasets/' if repo_type == 'dataset' else ''}{ref.id}"
    if not token:
        return f"{ref.key}: {ref.id} is gated: accept its licence at {page}, then set HF_TOKEN (no token is set)"
    try:
        api.auth_check(ref.id, repo_type=repo_type, token=token)
    except (GatedRepoError, RepositoryNotFoundError):
        return f"{ref.key}: {ref.id} is gated and this token has no access: accept its licence at {page}"
    return None


def resolve_hub(ref: Reference, api, token) -> tuple[dict, list[str]]:
    """One hub model or dataset: what it resolves to, and its problems."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    repo_type = "dataset" if ref.kind == "dataset" else "model"
    fetch = api.dataset_info if repo_type == "dataset" else api.model_info
    try:
        info = fetch(ref.id, revision=ref.revision, files_metadata=True, token=token or None)
    except RevisionNotFoundError:
        return {}, [f"{ref.key}: {ref.id} has no revision '{ref.revision}'"]
    except RepositoryNotFoundError:
        return {}, [f"{ref.key}: {repo_type} {ref.id} does not exist on the hub (or is private)"]
    resolved = {"sha": info.sha, "gated": info.gated or False}
    problems = []
    if info.gated and (problem := _gated_problem(ref, api, token, repo_type)):
        problems.append(problem)
    files = {s.rfilename: s for s in info.siblings or []}
    problems += [f"{ref.key}: {ref.id}@{ref.revision} has no file '{f}'" for f in ref.files if f not in files]
    if repo_type == "model":
        weights = [files[f] for f in ref.files if f in files] or weight_files(info.siblings)
        fetched = model_files(list(files), [s.rfilename for s in weights])
        resolved["fetch"] = {
            name: files[name].size for name in fetched if name in files
        }  # what the fetch stage downloads
        resolved["weight_bytes"] = int(sum(s.size or 0 for s in weights))
        if info.safetensors is not None:
            resolved["parameters"] = int(info.safetensors.total)
        if ref.pretrained and not weights:
            problems.append(f"{ref.key}: {ref.id}@{ref.revision} has no weight files")
        return resolved, problems
    splits = split_names(info)
    resolved["splits"] = splits
    fetched = dataset_files(list(files), _card(info), ref.splits, ref.files)
    resolved["fetch"] = {name: files[name].size for name in fetched if name in files}  # the missing: problems above
    problems += [
        f"{ref.key}: {ref.id} has no split '{s}' (it has: {', '.join(splits) or 'none'})"
        for s in ref.splits
        if splits and s not in splits
    ]
    columns = column_names(info)
    resolved["columns"] = columns
    if columns is not None:
        problems += [
            f"{ref.key}: {ref.id} has no column '{c}' (it has: {', '.join(columns)})" for c in ref.columns
            if c not in columns
        ]  # fmt: skip
    return resolved, problems


def hub_offline_reason(offline: bool = False) -> str | None:
    """Why hub references are checked against the local cache instead of the hub, or None when the hub is asked:
    the config's ``hub.offline``, or ``HF_HUB_OFFLINE`` set."""
    from huggingface_hub import constants

    if offline:
        return "hub.offline is set"
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    return None


def check_cached(ref: Reference, cache: Path) -> tuple[dict, list[str]]:
    """One hub reference against the local cache, file by file (``prh.io.fetch.file_problem``): its revision
    is there, a model has weight files, and every file matches the hash the cache names its blob by."""
    from prh.io.fetch import file_problem, snapshot_folder

    repo_type = "dataset" if ref.kind == "dataset" else "model"
    try:
        snapshot = snapshot_folder(ref.id, ref.revision or "main", repo_type, cache)
    except FileNotFoundError as err:
        return {}, [f"{ref.key}: {err}"]
    names = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if not p.is_dir())
    problems = [f"{ref.key}: {ref.id} in the cache: {p}" for n in names if (p := file_problem(snapshot, n, None))]
    if repo_type == "model" and ref.pretrained and not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        problems.append(f"{ref.key}: {ref.id} in the cache {cache} has no weight files")
    missing = [f for f in ref.files if f not in names]
    problems += [f"{ref.key}: {ref.id} in the cache {cache} has no file '{f}'" for f in missing]
    sizes = {n: (snapshot / n).stat().st_size for n in names}
    weight_bytes = sum(v for n, v in sizes.items() if n.endswith(WEIGHT_SUFFIXES))
    return {"sha": snapshot.name, "fetch": sizes, "weight_bytes": weight_bytes}, problems


def _unreachable(err: Exception) -> bool:
    """A connection failure (no network, DNS, a refused proxy), not an answer from the hub: httpx's (and
    httpx2's, which huggingface_hub uses) transport errors, or the standard library's."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        return False
    names = {c.__name__ for c in type(err).__mro__}
    return isinstance(err, (ConnectionError, TimeoutError)) or "TransportError" in names


def check(
    refs: list[Reference],
    root: str | Path = ".",
    api=None,
    token: str | None = None,
    offline: bool = False,
    cache: str | None = None,
) -> dict:
    """Check every reference; return ``{"hub": ..., "references": [...], "problems": [...]}``. Hub references
    are resolved on the hub, or, with ``offline`` (the config's ``hub.offline``) or ``HF_HUB_OFFLINE``, checked
    in the hub ``cache`` file by file. An unreachable hub is a problem, never a skip."""
    root = Path(root)
    problems, entries, hub_refs = [], [], []
    for ref in refs:
        entry = ref.as_dict()
        del entry["where"]
        if ref.kind == "path":
            found = check_path(ref, root)
            problems += found
            entries.append(entry | {"exists": not found})
        elif ref.kind == "features":
            found, resolved = check_features(ref, root)
            problems += found
            entries.append(entry | resolved)
        elif ref.kind == "timm":
            found, weights = check_timm(ref)
            problems += found
            entries.append(entry)
            if weights is not None:
                hub_refs.append((weights, entry))
        else:
            entries.append(entry)
            hub_refs.append((ref, entry))
    hub = "checked" if hub_refs else "no hub references"
    if hub_refs and (reason := hub_offline_reason(offline)):
        from prh.io.fetch import cache_dir

        where = cache_dir(cache)
        for ref, entry in hub_refs:
            resolved, found = check_cached(ref, where)
            problems += found
            entry.update(({"hub_id": ref.id} if entry["id"] != ref.id else {}) | resolved)
        hub = f"cache: {reason}; {len(hub_refs)} hub references checked in the cache {where}, file by file"
    elif hub_refs:
        from huggingface_hub import HfApi, get_token

        api = api or HfApi()
        token = token if token is not None else get_token()
        for ref, entry in hub_refs:
            try:
                resolved, found = resolve_hub(ref, api, token)
            except Exception as err:
                if not _unreachable(err):
                    raise
                problems.append(
                    f"the hub ({api.endpoint}) is unreachable ({err.__class__.__name__}), so {len(hub_refs)} hub "
                    f"references cannot be checked. Run the preflight where the hub answers (`snakemake "
                    f"--profile ... preflight`, e.g. on the login node), or, with a hub cache prepared elsewhere, "
                    f"set hub.offline: true (and hub.cache) to check them in that cache, file by file"
                )
                break
            problems += found
            entry.update(({"hub_id": ref.id} if entry["id"] != ref.id else {}) | resolved)
    return {"hub": hub, "references": entries, "problems": problems}


def references_hash(refs: list[Reference]) -> str:
    """What a preflight report was made for: the sha256 of its references."""
    import hashlib
    import json

    return "sha256:" + hashlib.sha256(json.dumps([r.as_dict() for r in refs], sort_keys=True).encode()).hexdigest()


def preflight_references(
    refs: list[Reference], root: str | Path = ".", api=None, token: str | None = None, hub: dict | None = None
) -> dict:
    """``check`` the references (``hub``: the config's ``hub`` section); raise ``PreflightError`` listing every
    problem."""
    hub = hub or {}
    report = check(refs, root, api, token, hub.get("offline", False), hub.get("cache"))
    report |= {"references_hash": references_hash(refs)}
    if report["problems"]:
        listing = "\n  - ".join(report["problems"])
        raise PreflightError(
            f"preflight found {len(report['problems'])} problem(s); no model job has started:\n  - {listing}"
        )
    return report


def preflight(config: dict, root: str | Path = ".", api=None, token: str | None = None) -> dict:
    """``check`` every reference of a validated config; raise ``PreflightError`` listing every problem."""
    return preflight_references(references(config), root, api, token, config.get("hub"))


def preflight_job(config: dict, output: str | Path, log: str | Path, provenance: dict) -> None:
    """The preflight job: ``preflight`` the run's references and write the report (the rule runs this in
    Snakemake's own process, as ``run:``, so that no script file's date can make it rerun and mask every job
    that waits for the report; see ``renewed_report``)."""
    from prh.io.fetch import as_the_user
    from prh.io.workflow import logged

    with logged(log) as logger, as_the_user():
        report = preflight(config)  # raises PreflightError naming every problem
        logger.info("hub: %s; %d references", report["hub"], len(report["references"]))
        write_report(output, report, provenance)


def write_report(path: str | Path, report: dict, provenance: dict | None = None) -> None:
    """``results/preflight.json``, written atomically."""
    import json

    from prh.io.workflow import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report | {"provenance": provenance or {}}, indent=2, sort_keys=True) + "\n")


def stale(report: dict, refs: list[Reference], offline: bool = False) -> bool:
    """Whether a report no longer answers for ``refs``: made for other references, with its hub part skipped
    (a report of an older version), or checked in the cache while the hub is to be asked again."""
    if report.get("references_hash") != references_hash(refs):
        return True
    hub = str(report.get("hub", ""))
    return hub.startswith("skipped") or (hub.startswith("cache:") and hub_offline_reason(offline) is None)


def renewed_report(path: str | Path, refs: list[Reference], api=None, hub: dict | None = None) -> dict | None:
    """The report ``path`` should hold now, when the one it holds was made for other references (a model
    added, a revision changed); None when it still answers for them, or is missing (the preflight job makes
    the first). Raises ``PreflightError`` naming every problem. A report checked in the cache
    (``hub.offline``, ``HF_HUB_OFFLINE``) is checked on the hub once neither is set; ``hub``: the config's
    ``hub`` section. Writes nothing: rules/common.smk checks while it plans (a dry run too) and writes the
    report when the run starts (``onstart``, which dry runs skip).

    Why not rerun the job: a job whose result other jobs read as ``ancient`` and that must run again while
    that result exists makes Snakemake's planner (9.x, ``DAG.update_needrun``) mask everything downstream
    of it, and a masked job whose only link to it is that ancient file is never planned, however
    missing its own output: the new model's jobs would wait for a second invocation."""
    import json

    from prh.io.fetch import as_the_user

    path = Path(path)
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    if report.get("references_hash") == references_hash(refs) and str(report.get("hub")) in (
        "checked",
        "no hub references",
    ):
        return None  # the common case, decided without importing huggingface_hub (every job's process parses this)
    with as_the_user():
        if not stale(report, refs, (hub or {}).get("offline", False)):
            return None
        return preflight_references(refs, api=api, hub=hub)


def pin_config(config: dict, validated: dict, report: dict) -> dict:
    """A copy of the user's ``config`` whose hub revisions are the commits ``report`` resolved (``validated``:
    the same config validated, defaults filled in; a section the user left to its defaults is written out)."""
    pinned = copy.deepcopy(config)
    refs = {r.key: r for r in references(validated)}
    for entry in report["references"]:
        ref = refs.get(entry["key"])
        if ref is None or not entry.get("sha") or ref.kind not in ("model", "dataset"):
            continue
        node, full = pinned, validated
        for part in ref.where:
            full = full[part]
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = copy.deepcopy(full)
            node = node[part]
        node["revision"] = entry["sha"]
    return pinned


def main(argv: list[str] | None = None) -> int:
    """``python -m prh.preflight pin results/preflight.json CONFIG``: print CONFIG with pinned revisions."""
    import json
    import sys

    import yaml

    from prh.config import validate_config

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "pin":
        print(main.__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(args[1]).read_text())
    config = yaml.safe_load(Path(args[2]).read_text())
    validated = validate_config(copy.deepcopy(config))
    sys.stdout.write(yaml.safe_dump(pin_config(config, validated, report), sort_keys=False, width=120))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
