"""The autosync receiver believes a pushed configuration's ``node`` only when it comes from that
node: the ssh peer (``SSH_CONNECTION``) must be a partner this node knows (a task's destination,
a replica's origin) and the node's name must be that address here — or, for a name that does
not resolve here, the address its first accepted push came from."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ovios_shell_retadm import exit_status
from ovios_shell_retadm.config import files, receive
from ovios_shell_retadm.config.model import Configuration, Share, digest, dump, with_share
from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore

HOSTS = {"src": {"192.168.0.149"}, "other": {"192.168.0.150"}, "dst": {"192.168.0.111"}}


def resolve(name: str) -> frozenset[str]:
    return frozenset(HOSTS.get(name, ()))


def sample(node: str = "src") -> Configuration:
    config = with_share(Configuration(), Share("smbvol", "data/smbvol"))
    return Configuration(node=node, generation=3, shares=config.shares)


def peer(address: str | None, *partners: str, earlier: str | None = None) -> receive.Peer:
    return receive.Peer(address, frozenset(partners), resolve, lambda _node: earlier)


@pytest.mark.parametrize("sender", [
    peer("192.168.0.149", "192.168.0.149"),       # a replica here has origin 192.168.0.149:data/smbvol
    peer("192.168.0.149", "src"),                 # this node replicates to src
    peer("::ffff:192.168.0.149", "192.168.0.149"),  # sshd on an IPv6 socket
])
def test_a_push_from_a_known_partner_naming_itself_is_accepted(sender):
    config = sample()
    assert receive.check(dump(config), digest(config), "dst", sender) == config


def test_a_name_that_does_not_resolve_here_belongs_to_the_address_that_pushed_it_first():
    """Nodes that know each other by address (the guide's set-up): the partner's host name is
    nobody's here, so its first accepted push binds it, and only that address may push it again."""
    config = sample("ghost")
    assert receive.check(dump(config), digest(config), "dst", peer("192.168.0.149", "src")) == config
    assert receive.check(dump(config), digest(config), "dst",
                         peer("192.168.0.149", "src", earlier="192.168.0.149")) == config


@pytest.mark.parametrize("node, sender, message", [
    ("src", peer(None, "src"), "not pushed over ssh (no SSH_CONNECTION): who sent it cannot be checked"),
    ("src", peer("192.168.0.7", "src"), "192.168.0.7 is not a partner of this node (no replication task to it, "
                                        "no replica of its datasets here)"),
    ("other", peer("192.168.0.149", "src", "other"), "the configuration names node other, but comes from "
                                                     "192.168.0.149, which is not other's address here "
                                                     "(other is 192.168.0.150)"),
    ("ghost", peer("192.168.0.150", "src", "other", earlier="192.168.0.149"),
     "the configuration names node ghost, whose pushes came from 192.168.0.149, but comes from 192.168.0.150 "
     "(ghost does not resolve here; remove /etc/ovios/synced/ghost.json and its record to let another address "
     "take it over)"),
])
def test_a_push_whose_node_is_not_its_sender_is_refused(node, sender, message):
    config = sample(node)
    with pytest.raises(receive.Refused) as caught:
        receive.check(dump(config), digest(config), "dst", sender)
    assert str(caught.value) == message


def run_receiver(root, text: str, ssh_connection: str | None):
    env = dict(os.environ, OVIOS_ROOT=str(root))
    env.pop("SSH_CONNECTION", None)
    if ssh_connection:
        env["SSH_CONNECTION"] = ssh_connection
    return subprocess.run([sys.executable, "-m", "ovios_shell_retadm.autosync_receive"], check=False, input=text,
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    TaskStore().create(TaskRecord("data/smbvol", "localhost", "data/smbvol", True, state=IDLE))
    TaskStore().create(TaskRecord("data/other", "127.0.0.2", "data/other", True, state=IDLE))
    return tmp_path


def test_the_receiver_process_refuses_a_node_that_is_not_the_ssh_peer_with_one_line(root):
    config = sample("localhost")
    stored = run_receiver(root, dump(config), "127.0.0.1 40000 127.0.0.1 22")
    assert (stored.returncode, stored.stderr) == (0, "") and files.load(files.synced_path("localhost")) == config
    # a name that does not resolve: the first accepted push binds it to its address
    ghost = run_receiver(root, dump(sample("ovios-ghost-node.invalid")), "127.0.0.1 40000 127.0.0.1 22")
    assert (ghost.returncode, ghost.stderr) == (0, "")
    for text, ssh in ((dump(sample("localhost")), "10.9.9.9 40000 127.0.0.1 22"),
                      (dump(sample("localhost")), None),
                      (dump(sample("ovios-ghost-node.invalid")), "127.0.0.2 40000 127.0.0.1 22")):
        refused = run_receiver(root, text, ssh)
        assert refused.returncode == exit_status.DATA_REFUSED and refused.stdout == ""
        assert refused.stderr.startswith("autosync receive: refused: ") and refused.stderr.count("\n") == 1
        assert "ghost" not in text or "whose pushes came from 127.0.0.1, but comes from 127.0.0.2" in refused.stderr
    assert sorted(p.name for p in files.synced_dir().iterdir() if not p.name.startswith(".")) == [
        "localhost.json", "ovios-ghost-node.invalid.json"]


@pytest.mark.parametrize("node", ["s\\u0000rc", "src\\n", "s\\u001brc"])
def test_a_node_name_with_a_control_character_is_one_line_and_exit_65(root, node):
    text = dump(sample("src")).replace('"node": "src"', f'"node": "{node}"')
    result = run_receiver(root, text, "127.0.0.1 40000 127.0.0.1 22")
    assert result.returncode == exit_status.DATA_REFUSED and "Traceback" not in result.stderr
    assert result.stderr.startswith("autosync receive: refused: node: ") and result.stderr.count("\n") == 1
