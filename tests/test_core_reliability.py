"""Core reliability: a device that is not there fails with one clear line; one encoder shared by
threads or by an event loop gives the serial answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from instructor_core import InstructorEncoder
from instructor_core.errors import DeviceError, InstructorError
from tests import tiny_models


# ---------------------------------------------------------------------------------------------- devices
def test_cuda_on_a_cpu_only_torch_is_a_clear_error(tiny_bert_path, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError) as info:  # today: AssertionError "Torch not compiled with CUDA enabled"
        InstructorEncoder.from_pretrained(tiny_bert_path, device="cuda")
    message = str(info.value)
    assert "device 'cuda' asked for, but this torch build has no CUDA" in message
    assert torch.__version__ in message and "use --device cpu" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, InstructorError)


def test_cuda_build_without_a_visible_gpu_and_a_missing_index(tiny_bert_path, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"'cuda:0' asked for, but no CUDA GPU is visible .*CUDA 12\.4"):
        InstructorEncoder.from_pretrained(tiny_bert_path, device="cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r"'cuda:3' asked for, but only 1 CUDA GPU\(s\) are visible"):
        InstructorEncoder.from_pretrained(tiny_bert_path, device="cuda:3")


def test_mps_where_there_is_none_is_a_clear_error(tiny_bert_path, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"device 'mps' asked for, but MPS is not available here .*--device cpu"):
        InstructorEncoder.from_pretrained(tiny_bert_path, device="mps")


# ---------------------------------------------------------------------------------------------- concurrency
INSTRUCTIONS = [
    "",
    "Represent the document: ",
    "Represent the Wikipedia question for retrieving supporting documents: ",
    "Represent the science sentence: ",
]


def test_eight_threads_with_mixed_instructions_equal_the_serial_result(tiny_t5_encoder):
    enc = tiny_t5_encoder
    assert not enc.spec.include_prompt  # instruction tokens are left out per item: mixing matters
    texts = tiny_models.corpus_lines(24)
    jobs = []
    for worker in range(8):
        # each thread its own mix of instructions and batch size, rotated so no two are alike
        pairs = [(INSTRUCTIONS[(i + worker) % len(INSTRUCTIONS)], t) for i, t in enumerate(texts)]
        jobs.append((pairs, 3 + worker))
    serial = [enc.encode(pairs, batch_size=size) for pairs, size in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(2):  # two rounds, so the threads really overlap
            threaded = list(pool.map(lambda job: enc.encode(job[0], batch_size=job[1]), jobs))
            for got, want in zip(threaded, serial, strict=True):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.abs(serial[0] - serial[1]).max() > 1e-3  # the mixes really differ


async def test_fifty_concurrent_aembed_query_equal_serial_results(tiny_bert_encoder):
    from instructor_langchain import InstructorEmbeddings

    embeddings = InstructorEmbeddings(encoder=tiny_bert_encoder, batch_size=4)
    queries = tiny_models.corpus_lines(50)
    serial = [embeddings.embed_query(q) for q in queries]
    gathered = await asyncio.gather(*(embeddings.aembed_query(q) for q in queries))
    assert len(gathered) == 50
    np.testing.assert_allclose(np.array(gathered), np.array(serial), rtol=0, atol=1e-6)
    assert len({tuple(np.round(v, 4)) for v in gathered}) > 40  # fifty different queries, not one answer
