"""A stand-in for the Hugging Face hub's metadata API that serves recorded repo metadata over real HTTP, so
``huggingface_hub.HfApi`` runs its own code path offline: URL building, headers, ``hf_raise_for_status``
mapping ``X-Error-Code`` to ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` / ``GatedRepoError``, and
``ModelInfo`` / ``DatasetInfo`` parsing.

Each repo is one JSON file, ``fixtures/hub/{models,datasets}/{owner}/{name}.json``: ``refs`` (branch → commit),
``gated`` (false, "auto" or "manual"), ``granted`` (tokens whose holders accepted the licence) and ``info``
(the rest of the API's answer). File names, sizes, gating, splits and features follow the public cards; the
commit hashes are fixture values, not the hub's.

Routes: ``GET /api/{models,datasets}/{repo}/revision/{rev}`` and ``GET /api/{models,datasets}/{repo}/auth-check``.

Repos served with their files (``recorded_hub(repos=...)``: a local folder per repo) answer as the hub does for
``snapshot_download`` too: ``GET /api/{models,datasets}/{repo}/tree/{rev}`` lists the files (sizes, git blob ids,
LFS sha256 for weights and large files) and ``HEAD``/``GET /[datasets/]{repo}/resolve/{rev}/{file}`` serves them
with the headers huggingface_hub reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and ``Range``.
``interrupt``: files whose first GET ends half way (a dropped connection); ``corrupt``: files served with
their bytes changed (same length, so only a hash can tell).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
ROUTE = re.compile(r"^/api/(models|datasets)/(.+?)(?:/revision/([^/]+)|/(auth-check))$")
TREE = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)$")
RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
LFS_SIZE = 100_000  # files this large, and weights, are LFS files on the hub (blob named by their sha256)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def folder_repo(folder: Path) -> dict:
    """A local folder as a hub repo: its commit (a hash of its files) and each file's size, blob id and LFS."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        name = str(path.relative_to(folder))
        lfs = len(data) >= LFS_SIZE or name.endswith((".safetensors", ".bin", ".pt", ".gguf"))
        files[name] = {"size": len(data), "blob": _blob_id(data), "path": path,
                       "sha256": hashlib.sha256(data).hexdigest() if lfs else None}  # fmt: skip
    commit = hashlib.sha1(json.dumps({n: f["blob"] for n, f in files.items()}).encode()).hexdigest()
    return {"commit": commit, "files": files}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict | None = None, error: str | None = None) -> None:
        data = json.dumps(body or {"error": error or ""}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error:
            self.send_header("X-Error-Code", error)
        self.end_headers()
        self.wfile.write(data)

    def _served(self, kind: str, repo: str):
        return self.server.repos.get(f"{kind}/{repo}")

    def _tree(self, match) -> None:
        kind, repo, revision = match.groups()
        served = self._served(kind, repo)
        if served is None:
            return self._send(404, error="RepoNotFound")
        if unquote(revision) not in ("main", served["commit"]):
            return self._send(404, error="RevisionNotFound")
        entries = [{"type": "file", "path": name, "size": f["size"], "oid": f["blob"]}
                   | ({"lfs": {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}} if f["sha256"] else {})
                   for name, f in served["files"].items()]  # fmt: skip
        data = json.dumps(entries).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _resolve(self, match, body: bool) -> None:
        dataset, repo, revision, name = match.groups()
        served = self._served("datasets" if dataset else "models", repo)
        entry = served and served["files"].get(unquote(name))
        if entry is None:
            return self._send(404, error="EntryNotFound")
        if unquote(revision) not in ("main", served["commit"]):
            return self._send(404, error="RevisionNotFound")
        data = entry["path"].read_bytes()
        key = f"{repo}/{unquote(name)}"
        if key in self.server.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        start = 0
        if rng := re.match(r"bytes=(\d+)-", self.headers.get("Range", "")):
            start = int(rng.group(1))
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", served["commit"])
        self.send_header("ETag", f'"{entry["sha256"] or entry["blob"]}"')
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return
        if body and key in self.server.interrupt and key not in self.server.interrupted:
            self.server.interrupted.add(key)  # the first transfer drops half way
            self.wfile.write(data[start : start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.server.downloads.append(key)
        self.wfile.write(data[start:])

    def do_HEAD(self):  # noqa: N802
        self.server.requests.append(f"HEAD {self.path}")
        if match := RESOLVE.match(urlparse(self.path).path):
            return self._resolve(match, body=False)
        self._send(404, error="EntryNotFound")

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(f"GET {self.path}")
        path = urlparse(self.path).path
        if match := TREE.match(path):
            return self._tree(match)
        if match := RESOLVE.match(path):
            return self._resolve(match, body=True)
        match = ROUTE.match(path)
        if not match:
            return self._send(404, error="EntryNotFound")
        kind, repo, revision, auth = match.groups()
        path = FIXTURES / kind / f"{repo}.json"
        if (served := self._served(kind, repo)) is not None and not auth:
            if unquote(revision) not in ("main", served["commit"]):
                return self._send(404, error="RevisionNotFound")
            siblings = [
                {"rfilename": n, "size": f["size"], "blobId": f["blob"]}
                | ({"lfs": {"sha256": f["sha256"], "size": f["size"], "pointerSize": 134}} if f["sha256"] else {})
                for n, f in served["files"].items()
            ]
            return self._send(200, {"_id": repo, "id": repo, "sha": served["commit"], "gated": False,
                                    "private": False, "siblings": siblings})  # fmt: skip
        if not path.is_file():
            return self._send(404, error="RepoNotFound")
        entry = json.loads(path.read_text())
        if auth:
            token = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if entry["gated"] and token not in entry.get("granted", []):
                return self._send(403, error="GatedRepo")
            return self._send(200, {})
        revision = unquote(revision)
        sha = entry["refs"].get(revision) or (revision if revision in entry["refs"].values() else None)
        if sha is None:
            return self._send(404, error="RevisionNotFound")
        self._send(
            200, {"_id": repo, "id": repo, "sha": sha, "gated": entry["gated"], "private": False} | entry["info"]
        )


@contextmanager
def recorded_hub(repos: dict[str, Path] | None = None, interrupt=(), corrupt=(), server_out: list | None = None):
    """Serve the recorded hub on localhost; yields its endpoint URL. ``repos``: ``{"models/org/name": folder}``
    served with their files; ``interrupt``/``corrupt``: ``org/name/file`` keys (see the module);
    ``server_out``: a list the server is appended to (its ``downloads``: every whole transfer; ``requests``:
    every request)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.repos = {key: folder_repo(Path(folder)) for key, folder in (repos or {}).items()}
    server.interrupt, server.corrupt, server.interrupted = set(interrupt), set(corrupt), set()
    server.downloads, server.requests = [], []
    if server_out is not None:
        server_out.append(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
