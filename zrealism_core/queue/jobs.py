"""One job as it travels through the queue: plain JSON, the input by path (never its pixels).

The output folder's name comes from a hash of the input's bytes, the job's options and the package
version, so a job delivered twice writes the same folder once, and the same job submitted twice is
found again (client.submit's cache).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__
from ..errors import InputError
from ..runner import RunOptions

# RunOptions fields that hold paths (they travel as strings)
_PATH_FIELDS = ("ip_adapter", "clip_vision")


def options_to_dict(options: RunOptions) -> Dict[str, Any]:
    """RunOptions -> JSON-able dict (paths as strings, LoRAs as [path, strength])."""
    d = asdict(options)
    d["loras"] = [[str(p), float(s)] for p, s in options.loras]
    d["embedding_dirs"] = [str(p) for p in options.embedding_dirs]
    for k in _PATH_FIELDS:
        d[k] = str(d[k]) if d[k] is not None else None
    return d


def options_from_dict(d: Dict[str, Any]) -> RunOptions:
    known = {f.name for f in fields(RunOptions)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise InputError(f"job options not known to this worker's zrealism {__version__}: {', '.join(unknown)} "
                         "(upgrade the worker to the clients' version).")
    d = dict(d)
    d["loras"] = [(Path(p), float(s)) for p, s in d.get("loras", [])]
    d["embedding_dirs"] = [Path(p) for p in d.get("embedding_dirs", [])]
    for k in _PATH_FIELDS:
        d[k] = Path(d[k]) if d.get(k) is not None else None
    return RunOptions(**d)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class JobSpec:
    """What a worker needs: the input (a path every worker can read), its digest, the options."""

    input: str
    digest: str
    options: Dict[str, Any] = field(default_factory=dict)
    force: bool = False  # run again even when the same job's outputs exist

    @classmethod
    def for_image(cls, path: Path, options: RunOptions, force: bool = False) -> "JobSpec":
        path = Path(path).resolve()
        if not path.is_file():
            raise InputError(f"input not found: {path}")
        return cls(input=str(path), digest=file_digest(path), options=options_to_dict(options), force=force)

    @property
    def key(self) -> str:
        """sha256 of the input's bytes, the options and the version: equal jobs, equal key."""
        doc = json.dumps({"digest": self.digest, "options": self.options, "version": __version__}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()

    @property
    def name(self) -> str:
        """The job's output folder name under the shared --out: <input stem>-<key, 16 hex>."""
        return f"{Path(self.input).stem}-{self.key[:16]}"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "JobSpec":
        return cls(**{k: d[k] for k in ("input", "digest", "options", "force") if k in d})

    def check_input(self) -> Path:
        """The input as this worker sees it, unchanged since it was submitted (else a clear error)."""
        path = Path(self.input)
        if not path.is_file():
            raise InputError(f"input not found on this worker: {path} (inputs are read by path: put them on a "
                             "folder every worker can read at the same path)")
        if file_digest(path) != self.digest:
            raise InputError(f"input changed since it was submitted: {path} (submit it again)")
        return path


def output_dir(out_root: Path, spec: JobSpec) -> Path:
    return Path(out_root) / spec.name


def is_complete(folder: Path, options: Optional[Dict[str, Any]] = None) -> bool:
    """A finished job's folder: report.json is written last (runner.run_image)."""
    from ..runner import is_done

    return is_done(Path(folder), bool((options or {}).get("video")))
