"""What every lab offers, whichever kind it is: :class:`TwoNodeLab` and :class:`LabReport`.

``ovios-lab`` and the tests drive the zfs-fuse lab (:class:`.fuse_lab.Lab`) and the OpenZFS
lab (:class:`.openzfs_lab.OpenZfsLab`) through this one interface; what only one kind can do
(power cuts: VMs only) fails with one line on the other.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from pathlib import Path

from .spec import LabError


class LabReport(ABC):
    """A lab's status as ``ovios-lab status`` shows it."""

    up: bool

    @abstractmethod
    def text(self) -> str:
        """The lines ``ovios-lab status`` prints."""


class TwoNodeLab(ABC):
    """Two nodes, ``src`` and ``dst``, with ZFS, sshd and cron, brought up on this machine."""

    name: str
    directory: Path
    #: the node names, ``src`` first
    nodes: tuple[str, ...]

    @abstractmethod
    def up(self) -> TwoNodeLab:
        """Start the lab (nothing happens if it is up and healthy)."""

    @abstractmethod
    def down(self) -> None:
        """Stop everything and remove the lab's directory."""

    @abstractmethod
    def is_up(self) -> bool: ...

    @abstractmethod
    def status(self) -> LabReport: ...

    @abstractmethod
    def node_address(self, node: str) -> str:
        """The node's address on the lab's network (the guide's addresses)."""

    @abstractmethod
    def exec(self, node: str, argv: list[str], input: str | None = None, check: bool = False,
             timeout: float | None = 120) -> subprocess.CompletedProcess:
        """Run ``argv`` in ``node``; text output; raises on ``check`` and a non-zero exit."""

    @abstractmethod
    def exec_argv(self, node: str, argv: list[str], tty: bool = False) -> list[str]:
        """The command line that runs ``argv`` in ``node`` (for ``os.execvp``); ``tty`` asks
        for a terminal where the way in needs to be told."""

    @abstractmethod
    def exec_env(self) -> dict[str, str]:
        """The environment to run :meth:`exec_argv`'s command line with."""

    @abstractmethod
    def reset(self) -> list[str]:
        """Back to the state after ``up``; what had to be done, one line each."""

    def power_off(self, node: str) -> None:
        """Cut a node's power, keeping its disks (VMs only)."""
        raise LabError(f"only the OpenZFS lab's VMs can be powered off and on: ovios-lab power-off --openzfs {node}")

    def power_on(self, node: str) -> float:
        """Start a powered-off node again; the seconds it took (0 when it was running)."""
        raise LabError(f"only the OpenZFS lab's VMs can be powered off and on: ovios-lab power-on --openzfs {node}")

    def summary(self) -> str:
        """The lab and its nodes' addresses, as ``ovios-lab up`` prints them."""
        lines = [f"lab {self.name} is up ({self.directory})"]
        lines += [f"  {node:<4} {self.node_address(node)}" for node in self.nodes]
        return "\n".join(lines)
