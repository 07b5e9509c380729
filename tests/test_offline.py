"""The suite runs with no network: only the allowed loopback hosts can be reached."""

from __future__ import annotations

import os
import socket

import pytest


def test_hub_is_offline():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_hosts_outside_the_allow_list_are_blocked():
    from pytest_socket import SocketConnectBlockedError

    # 127.0.0.2 is loopback (nothing leaves the machine) but not on the allow list, so the block
    # that would stop any outside address must stop it too.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("127.0.0.2", 9), timeout=1)
