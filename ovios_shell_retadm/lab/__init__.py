"""Test labs.  Lab 1: two ZFS nodes (zfs-fuse) in Linux namespaces on this machine.

>>> from ovios_shell_retadm.lab import Lab
>>> lab = Lab("labdev").up()
>>> lab.exec("src", ["zpool", "list"]).stdout
"""

from .fuse_lab import Lab, LabStatus, Node, NodeStatus, preflight
from .shell_link import ensure_ovios_shell_link
from .spec import LabError

__all__ = ["Lab", "LabError", "LabStatus", "Node", "NodeStatus", "ensure_ovios_shell_link", "preflight"]
