"""The callback URL a headless build claims: the default one unless another build holds its
claim or something listens on its port, and the claim lasts until the build ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit

import pytest

from atlassian_playbook.callback import claimed_callback_url
from atlassian_playbook.callback._claim import claim_path

from .conftest import free_port

HOLDER = textwrap.dedent("""
    import sys
    from atlassian_playbook.callback import claimed_callback_url
    with claimed_callback_url(sys.argv[1]) as url:
        print(url, flush=True)
        sys.stdin.readline()  # held until the test says
""")


@pytest.fixture
def default():
    """A default callback URL on a port of this test's."""
    return f"http://127.0.0.1:{free_port()}/callback"


def test_a_free_unclaimed_default_is_kept_and_claimed_until_the_block_ends(default):
    with claimed_callback_url(default) as url:
        assert url == default
        with claimed_callback_url(default) as second:  # another build meanwhile
            assert second != default
            assert urlsplit(second).path == "/callback"
            assert urlsplit(second).hostname == "127.0.0.1"
    with claimed_callback_url(default) as again:  # released
        assert again == default
    assert not claim_path(urlsplit(default).port).exists()  # and removed: /tmp keeps no litter


def test_a_build_in_another_process_holding_the_claim_sends_this_one_elsewhere(default):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, default], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == default  # it has the claim, port unbound
        with claimed_callback_url(default) as url:
            assert url != default
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    with claimed_callback_url(default) as url:  # its claim ended with it
        assert url == default


def test_a_port_something_listens_on_is_not_taken_even_unclaimed(default):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", urlsplit(default).port))
        listener.listen()
        with claimed_callback_url(default) as url:
            assert url != default


def test_the_free_port_taken_instead_is_claimed_too_and_below_the_ephemeral_range(default):
    from atlassian_playbook.callback._claim import ephemeral_ports

    low, _ = ephemeral_ports()
    with claimed_callback_url(default), claimed_callback_url(default) as elsewhere:
        assert 10000 <= urlsplit(elsewhere).port < low
        with claimed_callback_url(elsewhere) as third:  # a third build: not the same port
            assert third not in (default, elsewhere)


def test_port_zero_is_a_free_port_claimed_for_the_block():
    with claimed_callback_url("http://127.0.0.1:0/callback") as url:
        port = urlsplit(url).port
        assert port and claim_path(port).exists()
        with claimed_callback_url(url) as other:  # held: a second claim goes elsewhere
            assert other != url
    assert not claim_path(port).exists()
