"""A transfer that fails says in its one line which side failed and why, how far the stream
got, and what the next run does with what the partner kept (a cut incremental used to end with
only the receiver's last line, ``zfs send -t 1-10c41d…``, which reads like a command).

The pipelines are real processes; the receiver's words are OpenZFS's own for an interrupted
resumable receive."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from ovios_shell_retadm.replication.pipeline import TransferFailed, command_line, describe_failure, parse_rate, transfer

KEPT = ["cannot receive incremental stream: checksum mismatch or incomplete stream.",
        "Partially received snapshot is saved.",
        "A resuming stream can be generated on the sending system by running:",
        "zfs send -t 1-10c41d0dd2-f8-789c636064000310a500c4ec50360710e72765a526973030"]
needs_pv = pytest.mark.skipif(shutil.which("pv") is None, reason="pv (the byte meter) missing")


@pytest.mark.parametrize("sender, receiver, said_by_sender, said_by_receiver, moved, line", [
    # the case: the sender killed at 10 MB; the receiver kept what arrived
    (-signal.SIGKILL, 1, [], KEPT, 10_485_760,
     "zfs send was killed by SIGKILL after 10.0 MiB; the partial receive was kept: the next run resumes from there"),
    # the sender's own error, before anything moved; the receiver saw an empty stream
    (1, 1, ["cannot open 'data/x@retadm_1': dataset does not exist"], ["cannot receive: failed to read from stream"],
     0, "zfs send failed: cannot open 'data/x@retadm_1': dataset does not exist before any data moved; "
        "no partial receive was kept: the next run starts this send over"),
    # the receiver refused; the sender died of the broken pipe (SIGPIPE): not the sender's fault
    (-signal.SIGPIPE, 1, [], ["cannot receive incremental stream: destination repl/x has been modified"],
     4096, "zfs receive refused the stream: cannot receive incremental stream: destination repl/x has been "
           "modified after 4.0 KiB; no partial receive was kept: the next run starts this send over"),
    (0, -signal.SIGTERM, [], [], None,
     "zfs receive was killed by SIGTERM; no partial receive was kept: the next run starts this send over"),
])
def test_describe_failure(sender, receiver, said_by_sender, said_by_receiver, moved, line):
    assert describe_failure(sender, receiver, said_by_sender, said_by_receiver, moved) == line


@needs_pv
def test_a_sender_killed_mid_stream_is_named_with_how_far_it_got(tmp_path: Path):
    receiver = ["sh", "-c", f"cat > {tmp_path / 'received'}; "
                            + "; ".join(f"echo '{line}' >&2" for line in KEPT) + "; exit 1"]
    sender = ["sh", "-c", "head -c 1048576 /dev/zero; kill -KILL $$"]
    with pytest.raises(TransferFailed) as info:
        transfer(sender, receiver, stall_timeout=None)
    assert str(info.value) == ("zfs send was killed by SIGKILL after 1.0 MiB; the partial receive was kept: "
                               "the next run resumes from there")
    assert info.value.moved == 1048576 == (tmp_path / "received").stat().st_size


# -- the bandwidth limit ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, rate", [
    ("10M", 10 * 2**20), ("512K", 512 * 2**10), ("1.5G", int(1.5 * 2**30)), ("20MiB/s", 20 * 2**20),
    ("2048", 2048), ("10 m", 10 * 2**20),
])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "100", "abc", "-1M", "10X", ""])
def test_parse_rate_refuses(text):
    with pytest.raises(ValueError, match="invalid bandwidth"):
        parse_rate(text)


@needs_pv
def test_a_limited_stream_is_held_to_its_rate(tmp_path: Path):
    """pv holds the stream back: 256 KiB at 64 KiB/s cannot be through in much under 3 s."""
    result = transfer(["head", "-c", "262144", "/dev/zero"], ["sh", "-c", f"cat > {tmp_path / 'got'}"],
                      stall_timeout=None, rate_limit=65536)
    assert result.bytes == 262144 == (tmp_path / "got").stat().st_size
    assert result.seconds >= 2.5, result.seconds
    assert "--rate-limit 65536" in command_line(["zfs", "send", "p/d@s"], ["zfs", "receive", "q/d"], 65536)
