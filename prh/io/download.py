"""Downloads into a cache: one file per URL, fetched once by pooch (retries, a progress bar, a temporary file
renamed when complete, the sha256 checked), and never used when it is truncated or of the wrong size.

pooch checks a file against a known ``sha256``. Without one it would use any cached file of that name, so
``fetch`` first asks the server for the file's size (a ``HEAD`` request): a cached file of another size is
deleted and fetched again, and a download that ends short of its ``Content-Length`` is an error (requests
refuses it) that pooch retries. ``file://`` URLs and plain paths are read in place.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlparse

TIMEOUT_S = 30  # per request: a server that answers nothing for this long is unreachable


class DownloadError(RuntimeError):
    """A file could not be fetched, or what was fetched is not the file asked for; the message names the URL."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks; of a folder (a Zarr store), over its files' relative paths and
    contents in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file below a folder."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def is_remote(location: str) -> bool:
    """Whether ``location`` is an ``http``/``https`` URL (else a ``file://`` URL or a path)."""
    return urlparse(location).scheme in ("http", "https")


def local_path(location: str) -> Path:
    """The path of a ``file://`` URL or of a plain path."""
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)


def cache_name(url: str) -> str:
    """The cached file's name: the URL's own file name, prefixed by a digest of the whole URL so that two
    servers' files of one name never share a cache entry."""
    name = Path(unquote(urlparse(url).path)).name or "download"
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"


def remote_size(url: str, timeout: float = TIMEOUT_S) -> int | None:
    """The size the server declares for ``url`` (``HEAD``, redirects followed), or None when it declares none.
    Raises ``DownloadError`` for an error status (404 …) and ``ConnectionError``-like errors when unreachable."""
    import requests

    response = requests.head(url, timeout=timeout, allow_redirects=True)
    if response.status_code >= 400:
        raise DownloadError(f"{url}: the server answers {response.status_code} {response.reason}")
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def fetch(url: str, cache: str | Path, sha256: str | None = None, retries: int = 2, progress: bool = True) -> dict:
    """The local copy of ``url``: downloaded into ``cache`` once, or read in place for a ``file://`` URL or a
    path (a file, or a folder such as a Zarr store). Returns ``{"path", "url", "sha256", "bytes"}``.

    A given ``sha256`` is checked on the downloaded file and on a cached one (a cached file that differs is
    fetched again); a file whose size differs from the server's ``Content-Length`` is never used. Every
    failure raises one ``DownloadError`` naming the URL; a failed download leaves nothing in the cache."""
    if not is_remote(url):
        path = local_path(url)
        if not path.exists():
            raise DownloadError(f"{url}: no such file")
        digest = sha256_of(path)
        if sha256 and digest != sha256.lower():
            raise DownloadError(f"{url}: sha256 {digest}, expected {sha256}")
        return {"path": str(path), "url": url, "sha256": digest, "bytes": size_of(path)}
    import pooch
    import requests

    cache = Path(cache)
    target = cache / cache_name(url)
    try:
        size = remote_size(url)
    except requests.RequestException as err:  # unreachable: a complete cached copy may still serve
        if not target.is_file() or not sha256:
            raise DownloadError(f"{url}: cannot be reached ({err.__class__.__name__}: {err})") from err
        size = None
    if size is not None and target.is_file() and target.stat().st_size != size:
        target.unlink()  # truncated or replaced on the server: fetched again, never used
    known = f"sha256:{sha256.lower()}" if sha256 else None
    fetcher = pooch.create(path=cache, base_url="", registry={target.name: known}, urls={target.name: url},
                           retry_if_failed=retries)  # fmt: skip
    try:
        path = Path(fetcher.fetch(target.name, progressbar=progress))
    except ValueError as err:  # pooch: the hash does not match (after its retries)
        raise DownloadError(f"{url}: {err}") from err
    except requests.RequestException as err:
        raise DownloadError(f"{url}: the download failed ({err.__class__.__name__}: {err})") from err
    if size is not None and (arrived := path.stat().st_size) != size:
        path.unlink()
        raise DownloadError(f"{url}: {arrived} bytes arrived, the server declares {size}")
    return {"path": str(path), "url": url, "sha256": sha256_of(path), "bytes": path.stat().st_size}
