"""ONNX Runtime execution of an encoder's transformer (backends ``"onnx"`` and ``"onnx-int8"``).

The transformer is exported once with ``torch.onnx.export`` (the TorchScript exporter, falling back
to the dynamo exporter where it fails; dynamic batch and sequence axes; input ``input_ids`` and
``attention_mask``, output the last hidden state) into a cache folder keyed by the SHA-256 of the
model's config and weight files and the torch, transformers and onnxruntime versions. The int8
variant is made from that export with ``onnxruntime.quantization.quantize_dynamic``: int8 weights
per output channel, only for MatMuls whose second input is a weight (activation x activation
products in attention stay float32; quantizing those too was measured and not kept: no faster,
lower nDCG, see docs/performance.md).
Nothing is ever written into the model folder or site-packages; the default cache is
``$INSTRUCTOR_CACHE`` or ``$XDG_CACHE_HOME/instructor`` (``~/.cache/instructor``).

The cache verifies what it serves: each build writes ``manifest.json`` (atomically) with the
SHA-256 of every file it made and the key of the model it was exported from (the export folder's
name, :func:`export_key` of the model's files: another model's export copied over this one's, with
its own manifest, is rebuilt), and every load checks the files against it (re-hashing a file only
when its size, mtime, ctime or inode changed). A file that does not match (planted, truncated, half
copied) or a model ONNX Runtime cannot open is rebuilt once, with a warning; if the rebuild fails
too, a :class:`RuntimeError` names the cache folder. Builders and loaders of one export folder take
turns under :func:`instructor_core.locking.store_lock`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import torch

from instructor_core.errors import InputError, install_hint
from instructor_core.model.cache import default_cache_dir, hash_file
from instructor_core.safe_paths import confined

__all__ = ["OnnxCacheWarning", "OnnxTransformer", "default_cache_dir", "export_key"]

Variant = Literal["onnx", "onnx-int8"]
_FORMAT_VERSION = "5"  # bump when the export recipe changes, so old caches are not reused
_MANIFEST = "manifest.json"
_LOCK_TIMEOUT_S = 1800.0  # another process exporting the same model: wait for it (a large export takes minutes)


class OnnxCacheWarning(UserWarning):
    """A cached ONNX export failed its check and is being rebuilt."""


_EXTRA_HINT = f"the ONNX backends need onnx, onnxscript and onnxruntime: {install_hint('onnx')}"


def _require_onnx() -> ModuleType:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(_EXTRA_HINT) from error
    return onnxruntime


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


def _runtime_versions() -> str:
    """The versions an export depends on: torch (the exporter), transformers (the model code),
    onnxruntime (the quantizer and the runtime)."""
    return f"torch={torch.__version__};transformers={_version('transformers')};onnxruntime={_version('onnxruntime')}"


def export_key(transformer_path: Path) -> str:
    """A hex key for the model files: SHA-256 over config and weight file contents, plus versions."""
    digest = hashlib.sha256(f"format={_FORMAT_VERSION};{_runtime_versions()}".encode())
    names = sorted(
        p
        for p in Path(transformer_path).iterdir()
        if p.is_file() and (p.name == "config.json" or p.suffix in {".safetensors", ".bin"})
    )
    for path in names:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:24]


class _HiddenStates(torch.nn.Module):
    """Wraps a Hugging Face encoder so the export has two inputs and one output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]


def _export(model: torch.nn.Module, target: Path) -> None:
    """Export ``model`` (float32, CPU) to ``target`` (``model.onnx`` plus its external data)."""
    was_training = model.training
    model.eval()
    # Eager attention exports as MatMul/Add/Softmax with an additive mask; the SDPA decomposition
    # exports Where/IsNaN over (batch, heads, seq, seq), a slower int8 model (see docs/performance.md).
    previous = getattr(model.config, "_attn_implementation", None)
    set_attention = None if previous in (None, "eager") else getattr(model, "set_attn_implementation", None)
    if set_attention is not None:
        set_attention("eager")
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 9:] = 0  # trace the general, padded case
    try:
        with torch.no_grad():
            try:
                _export_torchscript(model, ids, mask, target / "model.onnx")
            except Exception:  # the TorchScript exporter is deprecated: fall back to dynamo
                for stale in target.iterdir():
                    stale.unlink()
                _export_dynamo(model, ids, mask, target / "model.onnx")
    finally:
        if set_attention is not None:
            set_attention(previous)
        model.train(was_training)


def _export_torchscript(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, target: Path) -> None:
    """The TorchScript exporter: its int8 model runs faster than the dynamo export's, same
    quantization, same vectors to 1e-4 (see docs/performance.md)."""
    import warnings

    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _HiddenStates(model),
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
            opset_version=17,
            dynamo=False,
        )


def _export_dynamo(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, target: Path) -> None:
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence")
    program = torch.onnx.export(
        _HiddenStates(model),
        (ids, mask),
        input_names=["input_ids", "attention_mask"],
        output_names=["hidden"],
        dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
        opset_version=18,
        dynamo=True,
        verbose=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    program.save(str(target), external_data=True)


def _quantize(source: Path, target: Path) -> None:
    """int8 weights per output channel; activation x activation products stay float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # DefaultTensorType: the TorchScript graph leaves some MatMul outputs untyped for shape inference
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},
    )


def _spinning() -> bool:
    """Whether ONNX Runtime's worker threads busy-wait between ops: ``$INSTRUCTOR_ORT_SPINNING``
    ("1"/"0"), default on (ONNX Runtime's own default). Spinning cuts the latency of short calls
    on cores of one's own; on cores shared with other busy processes it steals their time, and
    "0" is then faster (docs/performance.md has both measured)."""
    value = os.environ.get("INSTRUCTOR_ORT_SPINNING", "1").strip().lower()
    if value not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise InputError(f"INSTRUCTOR_ORT_SPINNING must be 1 or 0, got {value!r}")
    return value in ("1", "true", "yes", "on")


class OnnxTransformer:
    """Runs the transformer in ONNX Runtime; called like the torch model, returns hidden states.

    Build with :meth:`prepare`, which exports (once, cached) and opens a session.
    """

    def __init__(self, model_file: Path, num_threads: int | None = None) -> None:
        ort = _require_onnx()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if _spinning() else "0")
        self.model_file = Path(model_file)
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    @classmethod
    def prepare(
        cls,
        model: torch.nn.Module,
        transformer_path: Path,
        variant: Variant,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> OnnxTransformer:
        """Export ``model`` (the float32 torch transformer) unless a cached export exists and passes
        its check (see the module docstring), then load it.

        Args:
            model: The loaded torch transformer (its weights are the export's weights).
            transformer_path: The folder its config and weights came from (the cache key).
            variant: "onnx" (float32) or "onnx-int8".
            cache_dir: Where exports live; None uses :func:`default_cache_dir`.
        """
        _require_onnx()
        _spinning()  # a bad setting is the user's to fix, not a broken cache to rebuild
        if variant not in ("onnx", "onnx-int8"):
            raise InputError(f"variant must be 'onnx' or 'onnx-int8', got {variant!r}")
        from instructor_core.locking import store_lock

        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder = root / "onnx" / export_key(transformer_path)
        # a link below the cache root (onnx/ or onnx/KEY to a folder elsewhere) would make the lock, the
        # build and the manifest write there: refused, naming the link (the root itself may be a link)
        confined(root, folder, what="ONNX export cache folder")
        with ExitStack() as stack:
            try:
                stack.enter_context(store_lock(folder, timeout=_LOCK_TIMEOUT_S, what="ONNX export cache"))
            except PermissionError:
                pass  # a read-only, ready-made cache: nothing is built there, so no one to take turns with
            fp32 = _ensure(root, folder, "model.onnx", lambda tmp: _export(model, tmp))
            if variant == "onnx":
                return _open_checked(cls, root, folder, fp32, lambda tmp: _export(model, tmp))

            def build(tmp: Path) -> None:
                _quantize(fp32[0], tmp / "model_int8.onnx")

            return _open_checked(cls, root, folder, _ensure(root, folder, "model_int8.onnx", build), build)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden state ``(batch, seq, hidden)`` as a float32 CPU tensor."""
        feed = {
            "input_ids": input_ids.detach().cpu().numpy().astype(np.int64, copy=False),
            "attention_mask": attention_mask.detach().cpu().numpy().astype(np.int64, copy=False),
        }
        (hidden,) = self.session.run(["hidden"], feed)
        return torch.from_numpy(hidden)


# ---------------------------------------------------------------------------------------------- the cache
def _sha256(path: Path) -> str:
    return hash_file(path)


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "ino": stat.st_ino}


def _read_manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": _FORMAT_VERSION, "exports": {}}
    if not isinstance(data, dict) or not isinstance(data.get("exports"), dict):
        return {"format": _FORMAT_VERSION, "exports": {}}
    return data


def _write_manifest(folder: Path, manifest: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
        os.replace(tmp, folder / _MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check(folder: Path, name: str) -> str | None:
    """None when ``folder/name`` and its companion files match the manifest; else the problem.

    A file whose size, mtime, ctime and inode equal the manifest's is not re-hashed.
    """
    manifest = _read_manifest(folder)
    files = manifest["exports"].get(name)
    if not (folder / name).is_file():
        return "missing"
    if manifest.get("model") != folder.name:  # the folder's name is the model's export_key
        return f"{_MANIFEST} says it was exported from another model ({str(manifest.get('model'))[:40]!r})"
    if not isinstance(files, dict) or name not in files:
        return f"{name} is not in {_MANIFEST}"
    stale = False
    for file_name, recorded in files.items():
        if not isinstance(recorded, dict) or Path(file_name).name != file_name or file_name in ("", ".", ".."):
            return f"{_MANIFEST} is damaged (its entry {str(file_name)[:40]!r} under {name!r} is not a file record)"
        path = folder / file_name
        if not path.is_file():
            return f"{file_name} is missing"
        stamp = _stamp(path)
        if all(recorded.get(k) == v for k, v in stamp.items()):
            continue
        if stamp["size"] != recorded.get("size") or _sha256(path) != recorded.get("sha256"):
            return f"{file_name} does not match the SHA-256 recorded when it was built"
        recorded.update(stamp)  # same content, touched or copied: remember the new stamp
        stale = True
    if stale:
        _write_manifest(folder, manifest)
    return None


def _ensure(root: Path, folder: Path, name: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """``(folder/name, whether it was built now)``, checked; built when missing, rebuilt once (with a
    warning) when it fails the check."""
    problem = _check(folder, name)
    if problem is None:
        return folder / name, False
    if problem != "missing":
        warnings.warn(f"ONNX cache {folder}: {problem}; rebuilding it", OnnxCacheWarning, stacklevel=4)
    _publish(root, folder, name, build)
    problem = _check(folder, name)
    if problem is not None:
        raise RuntimeError(
            f"ONNX cache {folder}: {name} fails its check right after being rebuilt ({problem}); "
            "delete that folder and check the disk"
        )
    return folder / name, True


def _open_checked(
    cls: type[OnnxTransformer], root: Path, folder: Path, ensured: tuple[Path, bool], build: Callable[[Path], None]
) -> OnnxTransformer:
    """Open an inference session on the model file; one that ONNX Runtime cannot open is rebuilt
    once (unless it was just built: then the error is final)."""
    model_file, fresh = ensured
    try:
        return cls(model_file)
    except Exception as first:  # onnxruntime's InvalidProtobuf, Fail, ... have no common base
        if fresh:
            raise RuntimeError(
                f"ONNX cache {folder}: {model_file.name} cannot be opened even after a rebuild "
                f"({type(first).__name__}: {str(first)[:200]}); delete that folder, or use backend='torch'"
            ) from first
        warnings.warn(
            f"ONNX cache {folder}: ONNX Runtime cannot open {model_file.name} ({type(first).__name__}: "
            f"{str(first)[:200]}); rebuilding it",
            OnnxCacheWarning,
            stacklevel=4,
        )
    _publish(root, folder, model_file.name, build)
    try:
        return cls(model_file)
    except Exception as second:
        raise RuntimeError(
            f"ONNX cache {folder}: {model_file.name} cannot be opened even after a rebuild "
            f"({type(second).__name__}: {str(second)[:200]}); delete that folder, or use backend='torch'"
        ) from second


def _publish(root: Path, folder: Path, name: str, build: Callable[[Path], None]) -> None:
    """Build ``name`` (and its companion files) in a temporary folder, move them into ``folder``
    (replacing what is there), then record their SHA-256 in the manifest. Callers hold the
    folder's lock, so no other process builds or reads it meanwhile."""
    root.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        build(tmp)
        made = sorted(p for p in tmp.iterdir() if p.is_file())
        if name not in {p.name for p in made}:
            raise RuntimeError(f"the ONNX build made no {name} (made: {[p.name for p in made]})")
        manifest = _read_manifest(folder)
        manifest["format"] = _FORMAT_VERSION
        if manifest.get("model") != folder.name:  # nothing exported from another model is kept
            manifest["exports"] = {}
        manifest["model"] = folder.name  # binds the export to the model's files (export_key)
        manifest["exports"].pop(name, None)
        _write_manifest(folder, manifest)  # nothing of the old export is trusted while files move
        files = {}
        # data files first, so a model file is never visible before its external data
        for path in sorted(made, key=lambda p: p.suffix == ".onnx"):
            digest = _sha256(path)
            destination = folder / path.name
            os.replace(path, destination)
            files[path.name] = {"sha256": digest, **_stamp(destination)}
        manifest["exports"][name] = files
        _write_manifest(folder, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
