"""Test labs.  Lab 1: two ZFS nodes (zfs-fuse) in Linux namespaces on this machine.
Lab 2: two QEMU VMs with Debian 12 and OpenZFS 2.x (``OpenZfsLab``).

>>> from ovios_lab import Lab, OpenZfsLab
>>> lab = Lab("labdev").up()
>>> lab.exec("src", ["zpool", "list"]).stdout
>>> vms = OpenZfsLab("vmdev").up()
>>> vms.exec("src", ["zfs", "version"]).stdout
"""

from .base import LabReport, TwoNodeLab
from .fuse_lab import Lab, LabStatus, Node, NodeStatus, preflight
from .openzfs_lab import OpenZfsLab, OpenZfsLabStatus, VmStatus
from .spec import LabError

__all__ = ["Lab", "LabError", "LabReport", "LabStatus", "Node", "NodeStatus", "OpenZfsLab", "OpenZfsLabStatus",
           "TwoNodeLab", "VmStatus", "preflight"]
