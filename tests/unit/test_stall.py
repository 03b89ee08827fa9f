"""A transfer that moves no data for ``retadm.stall.timeout`` seconds is stopped (pv's
count, read beside the stream, is what "moves" means); without a meter it never is.

Bounds in these tests only catch a hang: each asserts what happened, not how fast."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ovios_shell_retadm import options
from ovios_shell_retadm.options import OptionError
from ovios_shell_retadm.replication import pipeline
from ovios_shell_retadm.replication.pipeline import TransferStalled, transfer
from ovios_shell_retadm.store import Store


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return Store()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stream_that_stops_moving_is_stopped_in_one_line(tmp_path: Path):
    pidfile = tmp_path / "sender.pid"
    # 64 KiB, then nothing more and no end: a wedged send
    sender = ["sh", "-c", f"echo $$ > {pidfile}; head -c 65536 /dev/zero; exec sleep 300"]
    started = time.monotonic()
    with pytest.raises(TransferStalled) as info:
        transfer(sender, ["sh", "-c", "cat > /dev/null"], stall_timeout=2)
    took = time.monotonic() - started
    assert str(info.value) == ("no data moved for 2 s: the transfer was stopped (65536 bytes had moved; "
                               "the limit is the option retadm.stall.timeout)")
    assert took < 60  # only catches a hang
    assert not _alive(int(pidfile.read_text()))  # killed and reaped, not left behind


def test_a_receiver_that_takes_nothing_stops_the_stream_too(tmp_path: Path):
    with pytest.raises(TransferStalled, match=r"^no data moved for 1.5 s: the transfer was stopped \(\d+ bytes"):
        transfer(["sh", "-c", "exec cat /dev/zero"], ["sh", "-c", "exec sleep 300"], stall_timeout=1.5)


def test_a_slow_stream_that_keeps_moving_is_not_stopped():
    sender = ["sh", "-c", "for i in 1 2 3 4 5 6; do head -c 1000 /dev/zero; sleep 0.5; done"]
    result = transfer(sender, ["sh", "-c", "cat > /dev/null"], stall_timeout=2)
    assert result.bytes == 6000


def test_without_a_meter_nothing_is_stopped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pipeline, "_meter", lambda rate_limit=None: None)
    result = transfer(["sh", "-c", "sleep 3; echo done"], ["sh", "-c", "cat > /dev/null"], stall_timeout=1)
    assert result.bytes is None


def test_the_limit_is_an_option_with_a_default_of_600_seconds(store: Store):
    assert options.get("retadm.stall.timeout", store) == "600"
    assert options.stall_timeout(store) == 600.0
    assert options.set_value("retadm.stall.timeout", " 5 ", store) == "5"
    assert options.stall_timeout(store) == 5.0
    assert options.set_value("retadm.stall.timeout", "0", store) == "0"
    assert options.stall_timeout(store) is None  # 0: no limit
    for bad in ("on", "-1", "1.5", "", "86401", "5s"):
        with pytest.raises(OptionError) as info:
            options.set_value("retadm.stall.timeout", bad, store)
        assert info.value.status == 2
        assert str(info.value) == (f"invalid value {bad!r} for retadm.stall.timeout: expected whole seconds "
                                   "from 0 (no limit) to 86400")
    assert options.get("retadm.stall.timeout", store) == "0"


def test_a_transfer_uses_the_configured_limit(store: Store):
    options.set_value("retadm.stall.timeout", "1", store)
    with pytest.raises(TransferStalled, match=r"^no data moved for 1 s"):
        transfer(["sh", "-c", "exec sleep 300"], ["sh", "-c", "cat > /dev/null"])
