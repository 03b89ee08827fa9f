"""What the command sets making up ``retadm`` share: their base class and their parsers' helpers.

``retadm`` itself is :class:`~.retadm.RetadmCommands`' command; other command sets add
subcommands to it (:mod:`.failover`, :mod:`.watch`).
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cmd2

from .. import plain_commands
from ..exit_status import USAGE, CommandError
from ..hosts import HostError, LocalHost, SshHost, host_names
from ..replication import origin, preflight
from ..replication.task_run import TaskRun
from ..replication.task_store import TaskRecord, TaskStore
from ..store import StoreError
from ..zfs import ZfsError, ZfsNode
from .base import OviosCommandSet

#: how long a completion may wait for `zfs list` (completion runs in a worker thread)
_COMPLETION_TIMEOUT = 5


# -- the parsers' helpers -------------------------------------------------------------------

def replicated_datasets(_self) -> cmd2.Choices:
    """Completes a dataset that has a replication task."""
    try:
        return cmd2.Choices.from_values(sorted({record.dataset for record in TaskStore().all()}))  # once each
    except StoreError:
        return cmd2.Choices.from_values(())


def local_unreplicated_datasets(_self) -> cmd2.Choices:
    """Completes a dataset of this node that has no replication task."""
    try:
        node = ZfsNode(LocalHost(), timeout=_COMPLETION_TIMEOUT)
        return cmd2.Choices.from_values(preflight.replicable_datasets(node, TaskStore()))
    except (HostError, ZfsError, StoreError, OSError):
        return cmd2.Choices.from_values(())


def known_partners(_self) -> cmd2.Choices:
    """Completes a destination: the partners of existing tasks, then the names /etc/hosts and
    root's known_hosts give."""
    return cmd2.Choices.from_values(partner_names())


def partner_names() -> list[str]:
    try:
        names = [record.destination for record in TaskStore().all()]
    except StoreError:
        names = []
    names += host_names(_read(Path("/etc/hosts")), _read(Path.home() / ".ssh" / "known_hosts"), socket.gethostname())
    return list(dict.fromkeys(names))


def destination_pools(_self, arg_tokens: Mapping[str, Sequence[str]]) -> cmd2.Choices:
    """Completes ``--remote-pool``: the pools of the ``--dest`` given, asked over ssh (its master
    connection where one is up); nothing when there is no ``--dest`` or it does not answer soon."""
    given = arg_tokens.get("dest") or ()
    return cmd2.Choices.from_values(pools_of(given[0]) if given else [])


def pools_of(address: str) -> list[str]:
    """The pools of the partner at ``address``; none when it cannot be asked within a few seconds."""
    try:
        host = SshHost(address, connect_timeout=_COMPLETION_TIMEOUT)
        return ZfsNode(host, timeout=_COMPLETION_TIMEOUT).pools()
    except (HostError, ZfsError, ValueError, OSError):
        return []


def _replicas(promoted: bool) -> list[str]:
    try:
        found = origin.replicas(ZfsNode(LocalHost(), timeout=_COMPLETION_TIMEOUT))
    except (HostError, ZfsError, OSError):
        return []
    return [name for name, is_promoted in found.items() if is_promoted == promoted]


def replicas_to_promote(_self) -> cmd2.Choices:
    """Completes ``promote``: the replicas here that are not promoted yet."""
    return cmd2.Choices.from_values(_replicas(promoted=False))


def promoted_replicas(_self) -> cmd2.Choices:
    """Completes ``reverse``: the replicas here that were promoted."""
    return cmd2.Choices.from_values(_replicas(promoted=True))


def replicated_back(_self) -> cmd2.Choices:
    """Completes ``switchback``: the promoted replicas here that have a task (``reverse`` made it)."""
    try:
        tasks = {record.dataset for record in TaskStore().all()}
    except StoreError:
        return cmd2.Choices.from_values(())
    return cmd2.Choices.from_values([name for name in _replicas(promoted=True) if name in tasks])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def complete(parser: argparse.ArgumentParser, dest: str, choices_provider: Callable[..., cmd2.Choices]) -> None:
    """Complete the values of ``parser``'s argument ``dest`` with ``choices_provider``: cmd2's own way
    (``set_choices_provider``, cmd2's addition to argparse actions) of saying what the
    ``choices_provider=`` of ``add_argument`` says, for a parser whose arguments were defined
    without cmd2 (:mod:`ovios_shell_retadm.plain_commands`)."""
    [action] = [action for action in parser._actions if action.dest == dest]
    action.set_choices_provider(choices_provider)  # type: ignore[attr-defined]


# -- the command sets -----------------------------------------------------------------------

class RetadmCommandSet(OviosCommandSet):
    """A command set of ``retadm``: choosing tasks and showing a run's plan."""

    def _records(self, dataset: str | None, dest: str | None) -> list[TaskRecord]:
        """Every task (no dataset), or the one task of ``dataset`` that ``dest`` chooses."""
        if dataset is None:
            if dest is not None:
                raise CommandError("--dest chooses among a dataset's tasks: name the dataset too", USAGE)
            return TaskStore().all()
        return [self._choose(dataset, dest)]

    def _choose(self, dataset: str, dest: str | None) -> TaskRecord:
        """The task of ``dataset`` that ``--dest`` names (needed only when it has several)."""
        return plain_commands.choose(dataset, dest)

    def _preview(self, run: TaskRun, title: str = "dry run") -> int:
        """Print what ``run`` would do, under ``title``; FAILED when its plan is a refusal."""
        return plain_commands.preview(run, self.out, title)
