"""Offline use: with HF_HUB_OFFLINE=1 a hub id fails at once, without even an address lookup."""

from __future__ import annotations

import socket

import pytest


def test_hub_calls_fail_without_a_network_attempt(monkeypatch, tmp_path):
    # The hub client itself must be offline (not just the variable set): a download of a hub id,
    # and loading a model by hub id, fail at once without even resolving the hub's address.
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from instructor_core import InstructorEncoder

    lookups = []

    def no_lookup(host, *args, **kwargs):
        lookups.append(host)
        raise OSError(f"test_offline: address lookup of {host!r} attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    with pytest.raises(LocalEntryNotFoundError):
        huggingface_hub.hf_hub_download("hkunlp/instructor-base", "config.json", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="instructor-test/not-in-any-cache"):  # no cached copy to fall back on
        InstructorEncoder.from_pretrained("instructor-test/not-in-any-cache", device="cpu")
    assert lookups == []
