"""retadm repair on the lab: what it will do first, confirmation, then replication goes on."""

from __future__ import annotations

import pexpect

from ovios_lab.fuse_lab import node_env

from replication_helpers import checksums, init, sh, shell, snapshots, status


def _diverge(lab):
    """The replica written and snapshotted on the destination (readonly lifted by hand)."""
    sh(lab, "dst", "zfs set readonly=off repl/smbvol; echo local > /repl/smbvol/local.txt;"
                   " zfs snapshot repl/smbvol@dstonly")


def test_repair_rolls_a_diverged_destination_back_after_showing_what_is_lost(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    _diverge(lab)
    sh(lab, "src", "echo newer > /data/smbvol/newer.txt")
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert refused.returncode == 1 and "has diverged after @retadm_" in refused.stderr and "@dstonly" in refused.stderr
    assert status(lab)["data/smbvol"]["status"] == "error"

    dry = shell(lab, "src", "retadm", "repair", "data/smbvol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "roll the destination back to @retadm_" in dry.stdout and "destroys @dstonly" in dry.stdout
    assert "dstonly" in snapshots(lab, "dst", "repl/smbvol")
    unconfirmed = shell(lab, "src", "retadm", "repair", "data/smbvol")
    assert unconfirmed.returncode == 1 and "not confirmed; nothing was changed" in unconfirmed.stderr
    assert "dstonly" in snapshots(lab, "dst", "repl/smbvol")

    done = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes")
    assert done.returncode == 0, done.stderr
    assert "dstonly" not in snapshots(lab, "dst", "repl/smbvol")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "idle"
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0


def test_repair_carries_out_only_the_rollback_that_was_confirmed(fresh_lab):
    """A snapshot taken on the destination while the prompt is open is not destroyed: the
    run plans again under the lock, finds a rollback that destroys more than was shown,
    and refuses, naming both; a repair asked again shows the new plan."""
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    _diverge(lab)
    argv = lab.exec_argv("src", ["ovios-shell"])
    env = dict(node_env(), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    session = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=120, dimensions=(40, 200))
    try:
        session.expect_exact("ovios-shell ➤")
        session.sendline("retadm repair data/smbvol")
        session.expect_exact("Go ahead? (yes/no) [no]:")
        assert "destroys @dstonly" in session.before and "@later" not in session.before
        sh(lab, "dst", "echo more > /repl/smbvol/more.txt; zfs snapshot repl/smbvol@later")
        session.sendline("yes")
        session.expect_exact("ovios-shell ➤")
        said = session.before
    finally:
        session.close(force=True)
    assert "refused: the destination changed since the plan was confirmed: it now needs 'roll the destination " \
           "back to @retadm_" in said and "destroys @dstonly, @later'" in said, said
    assert snapshots(lab, "dst", "repl/smbvol")[-2:] == ["dstonly", "later"]
    assert sh(lab, "dst", "cat /repl/smbvol/more.txt").stdout == "more\n"

    again = shell(lab, "src", "retadm", "repair", "data/smbvol", "--dry-run")
    assert "destroys @dstonly, @later" in again.stdout, again.stdout


def test_repair_with_nothing_in_common_keeps_the_old_replica_and_sends_in_full(fresh_lab):
    lab = fresh_lab
    tag = init(lab, "data/smbvol", "smbvol")["hold_tag"]
    # every snapshot the two sides shared is gone from the source (zfs-fuse has no bookmarks)
    for snap in snapshots(lab, "src", "data/smbvol"):
        sh(lab, "src", f"zfs release {tag} data/smbvol@{snap} 2>/dev/null; zfs destroy data/smbvol@{snap}")
    refused = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert "no snapshot in common" in refused.stderr

    done = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes")
    assert done.returncode == 0, done.stderr
    assert "keep the old destination dataset as repl/smbvol-old-" in done.stdout
    kept = [n for n in sh(lab, "dst", "zfs list -H -o name -r repl").stdout.split() if "smbvol-old-" in n]
    assert len(kept) == 1 and checksums(lab, "dst", "/" + kept[0]) == checksums(lab, "src", "/data/smbvol")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["status"] == "idle"
