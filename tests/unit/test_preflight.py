"""preflight.reverse_ssh: the partner's script run for real by /bin/sh here, as sshd would run
it there (``SSH_CONNECTION`` set), with an ``ssh`` first on its PATH that stands for the way
back (it exits with the status given).  Reaching back for real runs in the labs."""

from __future__ import annotations

import pytest

from ovios_shell_retadm.hosts import Host
from ovios_shell_retadm.replication import preflight


class _Partner(Host):
    """Runs argv here, in the environment sshd would give it on the partner."""

    name = "dst"

    def __init__(self, tmp_path, connection: str, back: int = 0):
        fake = tmp_path / "ssh"
        fake.write_text(f"#!/bin/sh\necho 'ssh back: exit {back}' >&2\nexit {back}\n")
        fake.chmod(0o755)
        self.env = [f"SSH_CONNECTION={connection}", f"PATH={tmp_path}:/usr/bin:/bin"]

    def argv_for(self, argv):
        return ["env", *self.env, *argv]


def test_the_partner_says_the_address_it_sees_and_that_it_reaches_back(tmp_path) -> None:
    assert preflight.reverse_ssh(_Partner(tmp_path, "192.168.0.149 40022 192.168.0.111 22")) == "192.168.0.149"


def test_a_partner_that_cannot_reach_back_is_refused_with_the_reason(tmp_path) -> None:
    refusal = r"back to 192\.168\.0\.149 does not work \(ssh back: exit 255\)"
    with pytest.raises(preflight.PreflightError, match=refusal):
        preflight.reverse_ssh(_Partner(tmp_path, "192.168.0.149 40022 192.168.0.111 22", back=255))


@pytest.mark.parametrize("seen", ["bad;name", "-oProxyCommand=x"])
def test_an_address_that_is_not_one_is_a_refusal_not_a_crash(tmp_path, seen: str) -> None:
    with pytest.raises(preflight.PreflightError, match="which is not an address") as refused:
        preflight.reverse_ssh(_Partner(tmp_path, f"{seen} 40022 192.168.0.111 22"))
    assert "\n" not in str(refused.value)
