"""The server fixtures themselves: a missing binary is a loud failure, never a skip."""

from __future__ import annotations

import pytest

from tests.support.servers import find_binary, free_port, port_open, require_module


def test_missing_server_binary_fails_with_what_to_install():
    with pytest.raises(pytest.fail.Exception) as failure:
        find_binary("no-such-server-binary", "/nonexistent/*/bin")
    assert "apt-get install" in str(failure.value)
    assert "not integration" in str(failure.value)  # how to deselect them knowingly


def test_missing_python_package_fails_with_the_pip_extra():
    with pytest.raises(pytest.fail.Exception) as failure:
        require_module("no_such_package_for_ciam_otp")
    assert ".[test]" in str(failure.value)


def test_free_port_is_free_on_loopback():
    assert not port_open(free_port())
