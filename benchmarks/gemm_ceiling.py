"""How fast any int8 path could be on this CPU: the model's matrix products at the measured peak.

An encoder spends most of its time in the Linear layers' products. This script measures, on the
model's own shapes (hidden x hidden, hidden x intermediate, intermediate x hidden, 8,192 rows),
what this CPU's kernels deliver: float32 in torch (oneDNN-packed, as the exact path runs) and in
ONNX Runtime, and int8 in ONNX Runtime (``DynamicQuantizeLinear`` + ``MatMulInteger``, the ops
``onnx-int8`` runs). From the model's multiply-accumulates per token it then derives a ceiling:
the tokens/s of a model whose Linear products all run at the int8 peak and whose attention
products run at the float32 peak (the int8 rate includes quantizing the activations, as the
model must), with everything else (layer norms, GELU, softmax, the adds) free. It encodes the
first ``--docs`` SciFact abstracts with sentence-transformers (float32) in the same run and
prints the ceiling as a multiple of it: a target above that multiple cannot be met on this CPU
with this model and these inputs.

    .venv/bin/python benchmarks/gemm_ceiling.py

It is a benchmark, not a test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from encoding_paths import DEFAULT_DATA, build_path, default_model, load_scifact, machine

ROWS = 8192


def _best_seconds(run, reps: int, warmup: int = 2) -> float:
    """Seconds of the fastest of ``reps`` timed calls of ``run()``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _rate(run, macs: int, reps: int) -> float:
    """GMAC/s of ``run()``: best of ``reps`` timed calls after two warm-up calls."""
    return macs / _best_seconds(run, reps) / 1e9


def _ort_session(k: int, n: int, int8: bool, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["M", k])
    if int8:
        weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "W")
        zero = numpy_helper.from_array(np.array(0, np.int8), "wz")
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["X"], ["xq", "xs", "xz"]),
            helper.make_node("MatMulInteger", ["xq", "W", "xz", "wz"], ["Y"]),
        ]
        y = helper.make_tensor_value_info("Y", TensorProto.INT32, ["M", n])
        initializers = [weight, zero]
    else:
        nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
        y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])
        initializers = [numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")]
    graph = helper.make_graph(nodes, "gemm", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def gemm_rates(hidden: int, intermediate: int, threads: int, reps: int) -> dict[str, dict[str, float]]:
    """GMAC/s per kernel and shape (K x N), M = ROWS."""
    import torch

    torch.set_num_threads(threads)
    shapes = {"h x h": (hidden, hidden), "h x i": (hidden, intermediate), "i x h": (intermediate, hidden)}
    rates: dict[str, dict[str, float]] = {"torch fp32 (oneDNN packed)": {}, "ORT fp32": {}, "ORT int8": {}}
    rng = np.random.default_rng(1)
    for label, (k, n) in shapes.items():
        macs = ROWS * k * n
        x = rng.standard_normal((ROWS, k)).astype(np.float32)
        weight = torch.randn(n, k)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        tx = torch.from_numpy(x)
        with torch.inference_mode():
            rates["torch fp32 (oneDNN packed)"][label] = _rate(
                lambda tx=tx, packed=packed: torch.ops.mkldnn._linear_pointwise(tx, packed, None, "none", [None], ""),
                macs,
                reps,
            )
        for name, int8 in (("ORT fp32", False), ("ORT int8", True)):
            session = _ort_session(k, n, int8, threads)
            rates[name][label] = _rate(lambda s=session, x=x: s.run(None, {"X": x}), macs, reps)
    return rates


def reference_tokens_per_s(model: Path, docs: list[str], batch_size: int, reps: int) -> tuple[float, float]:
    """sentence-transformers float32 on ``docs`` (``encode.py``'s "st" path: the model's document
    prompt, float32): tokens/s (best of ``reps``), and the length a token attends over on average
    (sum of squared lengths over the sum of lengths). Tokens are counted as ``encode.py`` counts
    them, with this package's tokenization of instruction + text."""
    from instructor_core import InstructorEncoder

    counter = InstructorEncoder.from_pretrained(model, device="cpu")
    lengths = [len(ids) for ids in counter.tokenize([(counter.instructions.document, d) for d in docs])]
    del counter
    tokens = sum(lengths)
    st = build_path("st", model, batch_size, None)
    st.documents(docs[:batch_size])
    seconds = _best_seconds(lambda: st.documents(docs), reps, warmup=0)
    return tokens / seconds, sum(n * n for n in lengths) / tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--docs", type=int, default=128, help="SciFact abstracts for the reference")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    model = args.model or default_model()
    config = json.loads((model / "config.json").read_text())
    hidden, intermediate, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    info = machine()
    info["loadavg_start"] = info.pop("loadavg")
    rates = gemm_rates(hidden, intermediate, args.threads, args.reps)
    docs, _, _ = load_scifact(args.data, args.docs)
    st_tokens_s, span = reference_tokens_per_s(model, docs, 32, max(2, args.reps // 2))
    info["loadavg_end"] = list(os.getloadavg())

    # Multiply-accumulates per token: the Linear layers (Q, K, V, output: 4 h^2; up and down: 2 h i)
    # and the attention products (scores and weighted sum: 2 x sequence x h), per layer.
    linear_macs = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention_macs = layers * 2 * span * hidden
    int8_peak = max(rates["ORT int8"].values())
    fp32_peak = max(max(r.values()) for name, r in rates.items() if "fp32" in name)
    ceiling = 1e9 / (linear_macs / int8_peak + attention_macs / fp32_peak)

    print(f"| kernel ({args.threads} threads, M={ROWS}) | " + " | ".join(rates["ORT int8"]) + " |")
    print("|---|" + "---|" * len(rates["ORT int8"]))
    for name, row in rates.items():
        print(f"| {name} | " + " | ".join(f"{v:.1f} GMAC/s" for v in row.values()) + " |")
    print()
    print("| quantity | value |")
    print("|---|---|")
    print(f"| Linear MACs per token ({layers} layers, h={hidden}, i={intermediate}) | {linear_macs / 1e6:.2f} M |")
    print(f"| attention-product MACs per token (attending over {span:.0f} tokens) | {attention_macs / 1e6:.2f} M |")
    print(f"| int8 peak / float32 peak | {int8_peak:.1f} / {fp32_peak:.1f} GMAC/s = {int8_peak / fp32_peak:.2f}x |")
    print(f"| sentence-transformers float32, measured | {st_tokens_s:,.0f} tokens/s |")
    print(
        f"| ceiling: Linear at the int8 peak, attention at the float32 peak, the rest free | {ceiling:,.0f} tokens/s |"
    )
    print(f"| ceiling / sentence-transformers | **{ceiling / st_tokens_s:.2f}x** |")
    print(
        f"\n{info['cpu']}, {info['cores']} cores; torch {info['torch']}; load average at start "
        f"{info['loadavg_start']}, at end {info['loadavg_end']}; {info['time_utc']} UTC"
    )
    if args.json:
        report = {
            "machine": info,
            "rates_gmac_s": rates,
            "linear_macs_per_token": linear_macs,
            "attention_macs_per_token": attention_macs,
            "st_tokens_per_s": st_tokens_s,
            "ceiling_tokens_per_s": ceiling,
            "ceiling_ratio": ceiling / st_tokens_s,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
