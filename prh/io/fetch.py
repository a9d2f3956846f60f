"""The fetch stage: every hub repository a run reads, downloaded once, before any job that reads it, into the
hub cache the config names (``hub.cache``, else huggingface_hub's ``HF_HUB_CACHE``), and verified file by file.

A fetch job downloads exactly the files preflight listed for its reference (``fetch``: name → size; a model's
weights in one format with its configs and tokenizer, a dataset's files of the splits the run reads) at the
commit preflight resolved, with ``huggingface_hub.snapshot_download`` (resumable: an interrupted file goes on
from its ``.incomplete`` part). Every file is then checked against its size and against the hash the cache
names its blob by (an LFS file's sha256, a small file's git blob sha1): a damaged file is removed and fetched
once more, and a second failure is one error naming the file. ``refs/{revision}`` is written, so that the
jobs, which run with ``HF_HUB_OFFLINE=1``, find the commit by the revision the config gives.

A run with ``hub.offline`` (a cache prepared elsewhere) verifies what is there and downloads nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from pathlib import Path

# Weight formats a model repository may hold besides the one a run loads: never fetched.
OTHER_WEIGHTS = (".bin", ".h5", ".msgpack", ".onnx", ".onnx_data", ".ot", ".tflite", ".mlmodel", ".pb", ".pth", ".pt",
                 ".ckpt", ".gguf", ".safetensors", ".npz")  # fmt: skip
CARD_FILES = ("README.md", "dataset_infos.json")  # where datasets reads a repository's splits from
COMMIT = re.compile(r"^[0-9a-f]{40}$")


class FetchError(RuntimeError):
    """A file that cannot be fetched whole; the message names the repository and the file."""


def cache_dir(config_cache: str | None = None) -> Path:
    """The hub cache a run reads: ``hub.cache`` when set, else huggingface_hub's own (``HF_HUB_CACHE``)."""
    if config_cache:
        return Path(config_cache).expanduser().resolve()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_folder(cache: str | Path, repo_id: str, repo_type: str) -> Path:
    """``models--org--name`` (or ``datasets--…``) in ``cache``: huggingface_hub's cache layout."""
    return Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"


def snapshot_folder(repo_id: str, revision: str, repo_type: str = "dataset", cache: str | Path | None = None) -> Path:
    """The fetched snapshot of ``repo_id`` at ``revision`` (a commit, or a branch whose ``refs`` file the fetch
    stage wrote), read from the cache without any network call. Raises FileNotFoundError saying how to fetch it."""
    cache = cache_dir(str(cache) if cache else os.environ.get("HF_HUB_CACHE"))
    folder = repo_folder(cache, repo_id, repo_type)
    ref = folder / "refs" / revision
    commit = revision if COMMIT.match(revision) else (ref.read_text().strip() if ref.is_file() else None)
    snapshot = folder / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        raise FileNotFoundError(
            f"{repo_type} {repo_id}@{revision} is not in the hub cache {cache}: the workflow's fetch stage "
            f"downloads it before any job reads it (snakemake --until fetch), or set hub.cache to the cache "
            f"that holds it"
        )
    return snapshot


# ---------------------------------------------------------------------------------------------- what to fetch
def _matches(name: str, pattern: str) -> bool:
    bare = pattern[3:] if pattern.startswith("**/") else None
    return fnmatch.fnmatch(name, pattern) or bool(bare and fnmatch.fnmatch(name, bare))


def split_files(names: list[str], card: dict) -> dict[str, list[str]]:
    """Split → data files of a dataset repository, as ``datasets`` finds them: the card's default ``configs``
    entry (``data_files`` by split), else ``datasets``' own split patterns over the file names. {} when neither
    names a split (the files are then read whole)."""
    names = [n for n in names if not n.startswith(".")]
    for config in card.get("configs") or []:
        if config.get("default") or len(card["configs"]) == 1 or config.get("config_name") == "default":
            entries = config.get("data_files")
            if isinstance(entries, list) and all(isinstance(e, dict) for e in entries):
                found = {}
                for entry in entries:
                    patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
                    found[entry["split"]] = sorted(n for n in names if any(_matches(n, p) for p in patterns))
                return found
    from datasets.data_files import _get_data_files_patterns

    try:
        patterns = _get_data_files_patterns(lambda p: [n for n in names if _matches(n, p)])
    except FileNotFoundError:
        return {}
    return {str(split): sorted(n for n in names if any(_matches(n, p) for p in ps)) for split, ps in patterns.items()}


def model_files(names: list[str], weights: list[str]) -> list[str]:
    """A model repository's files a run loads: ``weights`` (one format, chosen by preflight) and every file
    that is not a weight file of any format (configs, tokenizer, processor)."""
    return sorted(set(weights) | {n for n in names if not n.endswith(OTHER_WEIGHTS) and not n.startswith(".")})


def dataset_files(names: list[str], card: dict, splits: tuple[str, ...], data_files: tuple[str, ...] = ()) -> list[str]:
    """A dataset repository's files a run reads: ``data_files`` when the config names them, else those of
    ``splits`` (all files where the repository names no split), with the card files datasets reads."""
    if data_files:
        chosen = set(data_files)
    else:
        by_split = split_files(names, card)
        chosen = {f for s in splits for f in by_split.get(s, [])} if by_split else set(names)
    return sorted(chosen | {n for n in names if n in CARD_FILES})


# ---------------------------------------------------------------------------------------------- verifying
def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the hub names a non-LFS file's blob by)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_problem(snapshot: Path, name: str, size: int | None) -> str | None:
    """What is wrong with one fetched file, or None: missing, another size than the hub's, or content whose
    hash is not its blob's name (sha256 for LFS files, git sha1 otherwise)."""
    from prh.io.download import sha256_of

    path = snapshot / name
    if not path.is_file():
        return f"'{name}' is missing"
    if size is not None and path.stat().st_size != size:
        return f"'{name}' has {path.stat().st_size} bytes, the hub's has {size}"
    blob = Path(os.path.realpath(path)).name
    if len(blob) == 64 and sha256_of(path) != blob:
        return f"'{name}' does not match its sha256 {blob}"
    if len(blob) == 40 and git_blob_sha1(path) != blob:
        return f"'{name}' does not match its git hash {blob}"
    return None


def _remove(snapshot: Path, name: str) -> None:
    """Remove a damaged file: its blob and the snapshot's link to it."""
    path = snapshot / name
    blob = Path(os.path.realpath(path))
    for p in (blob, path):
        if p.exists() or p.is_symlink():
            p.unlink()


# ---------------------------------------------------------------------------------------------- fetching
def fetch(entry: dict, cache: str | Path, offline: bool = False, token: str | None = None,
          endpoint: str | None = None) -> dict:  # fmt: skip
    """Download one preflight entry's files (``fetch``) at its resolved commit (``sha``) into ``cache`` and verify
    them; ``offline``: verify the cache only. Returns the manifest (repository, commit, snapshot folder, files
    and their sizes). Raises FetchError naming the repository and every file that cannot be had whole."""
    from huggingface_hub import snapshot_download

    repo_id = entry.get("hub_id") or entry["id"]
    repo_type = "dataset" if entry["kind"] == "dataset" else "model"
    revision = entry.get("revision") or "main"
    files = entry.get("fetch") or {}
    where = f"{entry['key']}: {repo_type} {repo_id}@{revision}"
    if offline:
        snapshot = snapshot_folder(repo_id, revision, repo_type, cache)
        files = files or {str(p.relative_to(snapshot)): None for p in snapshot.rglob("*") if not p.is_dir()}
    else:
        if not entry.get("sha"):
            raise FetchError(f"{where}: preflight resolved no commit for it; run the preflight with hub access")

        def download() -> Path:
            return Path(snapshot_download(repo_id, repo_type=repo_type, revision=entry["sha"], cache_dir=cache,
                                          allow_patterns=sorted(files), token=token, endpoint=endpoint))  # fmt: skip

        snapshot = download()
        damaged = [name for name, size in files.items() if file_problem(snapshot, name, size)]
        for name in damaged:  # a damaged file: removed and fetched once more
            _remove(snapshot, name)
        if damaged:
            snapshot = download()
        ref = repo_folder(cache, repo_id, repo_type) / "refs" / revision  # a branch may hold slashes
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(entry["sha"])  # the jobs find the commit by the config's revision
    problems = [p for name, size in sorted(files.items()) if (p := file_problem(snapshot, name, size))]
    if problems:
        raise FetchError(f"{where}: " + "; ".join(problems))
    sizes = {name: (snapshot / name).stat().st_size for name in sorted(files)}
    return {"key": entry["key"], "kind": repo_type, "id": repo_id, "revision": revision,
            "sha": snapshot.name, "snapshot": str(snapshot), "files": sizes, "bytes": sum(sizes.values())}  # fmt: skip


def fetch_job(target: dict, report_path: str | Path, hub: dict, output: str | Path, spec: dict | None = None) -> dict:
    """The fetch job of one target of ``fetch_targets``: a hub repository (its entry in the preflight report,
    fetched into ``hub["cache"]``), or Places-365's archives (``spec``: the dataset); the manifest written."""
    from prh.io.workflow import atomic_path

    if target["kind"] == "places365":
        manifest = fetch_places365(spec)
    else:
        report = json.loads(Path(report_path).read_text())
        entries = [e for e in report["references"] if e["key"] == target["key"]]
        if not entries:
            raise FetchError(f"{target['key']}: not in the preflight report {report_path}; run the preflight again")
        with as_the_user() as offline:
            manifest = fetch(entries[0], cache_dir(hub.get("cache")), offline=hub.get("offline", False) or offline)
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def fetch_targets(config: dict, refs: list) -> dict[str, dict]:
    """What the fetch stage downloads for a validated config, by target name (the reference's config path with
    names for indices: ``models/{model}``, ``datasets/{dataset}``, ``probes/tasks/{task}``,
    ``downstream/tasks/{task}``, ``lm_score/corpus_hub``, ``colour/images``, ``density/summaries/model``):
    each hub repository of ``refs`` (preflight's ``references``; ``kind: hub``, its ``key``) and each
    Places-365 archive torchvision downloads (``kind: places365``)."""

    def target(where: tuple) -> str:
        node, parts = config, []
        for part in where:
            node = node[part]
            parts.append(node["name"] if isinstance(part, int) else str(part))
        return "/".join(parts)

    found = {}
    for ref in refs:
        if ref.kind in ("model", "dataset") or (ref.kind == "timm" and ref.pretrained):
            found[target(ref.where)] = {"kind": "hub", "key": ref.key}
    for i, d in enumerate(config["datasets"]):
        if d["kind"] == "places365" and d.get("download", True):
            found[f"datasets/{d['name']}"] = {"kind": "places365", "key": f"datasets[{i}] (dataset '{d['name']}')"}
    return found


USER_OFFLINE = "PRH_USER_HF_HUB_OFFLINE"  # the HF_HUB_OFFLINE the user ran snakemake with


def jobs_read_the_cache(config_cache: str | None = None) -> None:
    """Set ``HF_HUB_OFFLINE=1`` and the config's ``hub.cache`` as ``HF_HUB_CACHE`` for every job the workflow
    starts (local jobs inherit them, SLURM's ``sbatch --export=ALL`` passes them on), keeping the user's own
    offline setting in ``PRH_USER_HF_HUB_OFFLINE`` for the jobs that ask the hub (preflight, fetch:
    ``as_the_user``). Called while the workflow is parsed, also in the processes Snakemake starts for jobs,
    which find the user's setting already kept."""
    os.environ.setdefault(USER_OFFLINE, os.environ.get("HF_HUB_OFFLINE", ""))
    os.environ["HF_HUB_OFFLINE"] = "1"
    if config_cache:
        os.environ["HF_HUB_CACHE"] = str(cache_dir(config_cache))


class as_the_user:  # noqa: N801 (a context manager, named as a phrase)
    """huggingface_hub's offline switch as the user set it (``PRH_USER_HF_HUB_OFFLINE``) for the body: the
    preflight and fetch jobs ask the hub unless the user switched it off."""

    def __enter__(self):
        from huggingface_hub import constants

        self.was = constants.HF_HUB_OFFLINE
        if USER_OFFLINE in os.environ:
            constants.HF_HUB_OFFLINE = os.environ[USER_OFFLINE].strip().upper() in ("1", "ON", "YES", "TRUE")
        return constants.HF_HUB_OFFLINE

    def __exit__(self, *exc):
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = self.was


def fetch_places365(spec: dict) -> dict:
    """Places-365's archives for ``spec`` (a validated dataset entry), downloaded by torchvision into ``root``
    and checked against torchvision's md5 sums, unless ``root`` holds the unpacked layout already (a copy
    prepared by hand is used as it is); the manifest lists what is there."""
    from torchvision.datasets import Places365

    root, split = Path(spec["root"]), spec["split"]
    folder = root / f"{split}_{'256' if spec['small'] else 'large'}"
    lists = [root / "categories_places365.txt", root / f"places365_{split}.txt"]
    present = folder.is_dir() and all(p.is_file() for p in lists)
    if not present:
        Places365(str(root), split=split, small=spec["small"], download=True)
    return {"kind": "places365", "root": str(root), "images": str(folder), "downloaded": not present,
            "files": sum(1 for _ in folder.rglob("*.jpg"))}  # fmt: skip
