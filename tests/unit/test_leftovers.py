"""A receive a dead run left on the partner: listing, connections, and which ones are orphans."""

from __future__ import annotations

import subprocess

import pytest

from ovios_shell_retadm.replication import leftovers
from ovios_shell_retadm.replication.leftovers import Receive

# /proc/net/tcp on src after the network was cut mid-transfer and put back: the old
# master's socket lingers in FIN-WAIT-1 (04), the new master is ESTABLISHED (01)
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 585665 1 0 100 0 0 10 0
   1: 9500A8C0:9EB6 6F00A8C0:0016 04 001297E1:00000000 01:00000201 00000007     0        0 0 3 0 2713 4 1 1 144
   2: 9500A8C0:C9AE 6F00A8C0:0016 01 00000000:00000000 02:000AF95E 00000000     0        0 586592 2 0 22 6 1 160 178
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 0000000000000000FFFF00000100007F:8CE4 0000000000000000FFFF00000100007F:9D05 01 00000000:00000000
   2: 00000000000000000000000001000000:A000 00000000000000000000000001000000:0016 01 00000000:00000000
"""

# what the listing script prints on dst: pid, seconds, SSH_CONNECTION, argv
LISTING = (
    "18353\t42\t192.168.0.149 40630 192.168.0.111 22\tzfs receive repl/smbvol \n"
    "18400\t1\t192.168.0.149 51630 192.168.0.111 22\tzfs get -H -p guid repl/smbvol \n"
    "18401\t7\t192.168.0.149 51630 192.168.0.111 22\tzfs recv -s -u repl/smbvol \n"
    "18402\t9\t\tzfs receive repl/smbvol \n"  # typed on dst: no ssh connection
    "18403\t9\t10.0.0.7 40000 192.168.0.111 22\tzfs receive repl/other \n"
    "garbage line\n"
)


def test_receives_into_the_replica_with_their_connections():
    assert leftovers.parse_receives(LISTING, "repl/smbvol") == [
        Receive(18353, 42, ("192.168.0.149", 40630, "192.168.0.111", 22), "zfs receive repl/smbvol"),
        Receive(18401, 7, ("192.168.0.149", 51630, "192.168.0.111", 22), "zfs recv -s -u repl/smbvol"),
        Receive(18402, 9, None, "zfs receive repl/smbvol"),
    ]
    assert leftovers.parse_receives(LISTING, "repl/smb") == []  # a name is matched whole
    assert leftovers.parse_receives("", "repl/smbvol") == []


@pytest.mark.parametrize("text, expected", [
    ("192.168.0.149 40630 192.168.0.111 22", ("192.168.0.149", 40630, "192.168.0.111", 22)),
    ("::ffff:192.168.0.149 40630 ::ffff:192.168.0.111 22", ("192.168.0.149", 40630, "192.168.0.111", 22)),
    ("fd00:0:0::1 5000 fd00::2 22", ("fd00::1", 5000, "fd00::2", 22)),
    ("", None),
    ("192.168.0.149 40630 192.168.0.111", None),
    ("not-an-address 1 192.168.0.111 22", None),
])
def test_parse_connection(text, expected):
    assert leftovers.parse_connection(text) == expected


def test_established_connections_from_proc_net_tcp():
    assert leftovers.established([PROC_NET_TCP, PROC_NET_TCP6]) == {
        ("192.168.0.149", 51630, "192.168.0.111", 22),  # not the FIN-WAIT-1 one, not the listener
        ("127.0.0.1", 36068, "127.0.0.1", 40197),  # IPv4-mapped, spelled as IPv4
        ("::1", 40960, "::1", 22),
    }


def test_only_a_receive_whose_connection_from_here_is_gone_is_an_orphan():
    receives = leftovers.parse_receives(LISTING.replace("repl/other", "repl/smbvol"), "repl/smbvol")
    alive = leftovers.established([PROC_NET_TCP])
    here = {"192.168.0.149"}.__contains__
    orphans = leftovers.orphaned(receives, alive, here)
    # 18353: its connection is gone; 18401: alive; 18402: not over ssh; 18403: from another machine
    assert [r.pid for r in orphans] == [18353]
    assert leftovers.orphaned(receives, alive, lambda _address: False) == []


def test_the_stop_command_names_the_process_and_its_connection():
    receive = Receive(18353, 42, ("192.168.0.149", 40630, "192.168.0.111", 22), "zfs receive repl/smbvol")
    argv = leftovers.stop_argv(receive)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", "18353", "192.168.0.149 40630 192.168.0.111 22"]
    with pytest.raises(ValueError):
        leftovers.stop_argv(Receive(1, 1, None, "zfs receive repl/smbvol"))


def test_the_scripts_run_here(tmp_path):
    """The listing script runs under sh and finds nothing of ours; stop ignores a stranger."""
    listing = subprocess.run(leftovers.listing_argv(), check=False, capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    assert leftovers.parse_receives(listing.stdout, "no/such-replica") == []
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        stranger = Receive(sleeper.pid, 0, ("192.0.2.1", 1, "192.0.2.2", 22), "zfs receive x/y")
        assert subprocess.run(leftovers.stop_argv(stranger), check=False, timeout=30).returncode == 0
        assert sleeper.poll() is None  # not served by that connection: not stopped
    finally:
        sleeper.kill()
        sleeper.wait()


def test_local_addresses():
    assert leftovers.is_local_address("127.0.0.1")
    assert not leftovers.is_local_address("192.0.2.123")  # TEST-NET-1: nobody's
    assert not leftovers.is_local_address("not an address")
