"""A partner whose sshd listens on another port: ssh's own configuration says so
(``/root/.ssh/config``), and every connection retadm makes goes there — here a task moved with
``retadm edit --address`` to such a name, then a run and doctor over it."""

from __future__ import annotations

import pytest

from replication_helpers import init, sh, shell, status

ALT = "Host dst-alt\n    HostName 192.168.0.111\n    Port 2222\n    HostKeyAlias dst\n"


@pytest.fixture
def sshd_on_2222(fresh_lab):
    """A second sshd on dst, on port 2222, and src's ssh told so; both gone afterwards."""
    sh(fresh_lab, "dst", "/usr/sbin/sshd -p 2222 -o PidFile=/run/sshd-2222.pid")
    sh(fresh_lab, "src", f"cp -p /root/.ssh/config /root/.ssh/config.saved 2>/dev/null; printf '{ALT}' >> "
                         "/root/.ssh/config; chmod 600 /root/.ssh/config")
    yield fresh_lab
    sh(fresh_lab, "dst", "kill $(cat /run/sshd-2222.pid)", check=False)
    sh(fresh_lab, "src", "if [ -e /root/.ssh/config.saved ]; then mv /root/.ssh/config.saved /root/.ssh/config;"
                         " else rm -f /root/.ssh/config; fi")


def test_a_partner_on_another_port(sshd_on_2222):
    lab = sshd_on_2222
    init(lab, "data/smbvol", "smbvol")
    moved = shell(lab, "src", "retadm", "edit", "data/smbvol", "--address", "dst-alt")
    assert (moved.returncode, moved.stdout) == (0, "data/smbvol -> dst:repl/smbvol: destination dst -> dst-alt\n"), \
        moved.stderr
    sh(lab, "src", "echo port > /data/smbvol/port.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, "")
    assert sh(lab, "dst", "cat /repl/smbvol/port.txt").stdout == "port\n"
    # 'dst-alt' is a name only ssh's configuration knows; its connection (kept open as the
    # master of the next calls) is the one on port 2222
    assert status(lab)["data/smbvol"]["destination"] == "dst-alt"
    assert "192.168.0.149" in sh(lab, "dst", "ss -tn state established '( sport = :2222 )'").stdout
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol", timeout=120).stdout
    assert "OK    ssh src→dst-alt: passwordless" in doctor, doctor
