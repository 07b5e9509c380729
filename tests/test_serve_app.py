"""The server's app in-process (Starlette's TestClient): what a bug looks like from outside, and the
settings' own checks. The routes against a real process are tests/test_serve.py."""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient  # noqa: E402

from instructor_core import InstructorEncoder  # noqa: E402
from instructor_serve import ServeSettings, create_app, is_loopback  # noqa: E402


def _ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.05)


def test_a_bug_is_a_500_envelope_without_traceback_and_the_log_keeps_it(tiny_bert_path, caplog):
    encoder = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug in a forward pass")

    encoder.forward = broken  # type: ignore[method-assign]
    app, _ = create_app(ServeSettings(), lambda: encoder, model_label="tiny")
    with caplog.at_level(logging.ERROR, logger="instructor_serve"), TestClient(app) as client:
        _ready(client)
        response = client.post("/v1/embeddings", json={"input": ["a", "b"]})
        assert response.status_code == 500
        assert response.json() == {
            "error": {
                "message": "internal error; the server's log has the traceback",
                "type": "server_error",
                "param": None,
                "code": "internal",
            }
        }
        assert "Traceback" not in response.text and "simulated" not in response.text
        assert client.get("/health").status_code == 200  # the server goes on
    assert any("simulated bug" in (r.exc_text or "") for r in caplog.records)


def test_a_model_that_fails_to_load_keeps_health_503_with_the_reason():
    def load():
        raise FileNotFoundError("no model at /nowhere")

    failures = []
    app, state = create_app(ServeSettings(), load, model_label="nowhere", on_load_error=failures.append)
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        refused = client.post("/v1/embeddings", json={"input": ["x"]})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "load_failed"
    assert failures == ["FileNotFoundError: no model at /nowhere"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_client_batch_size": 20000}, "above max_queue_inputs"),
        ({"max_batch_tokens": 0}, "max_batch_tokens"),
        ({"default_input_type": "passage"}, "default_input_type"),
        ({"drain_seconds": -1}, "drain_seconds"),
    ],
)
def test_settings_refuse_what_cannot_work(kwargs, words):
    with pytest.raises(ValueError, match=words):
        ServeSettings(**kwargs)


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.org")
