"""The lab's record of what it started: ``state.json`` in the lab directory.

Written as soon as a holder is known (before its daemons start), so a lab that
died half-way can still be cleaned up; ``ready`` becomes true when ``up`` finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .osutil import ProcessId, namespace_id

NAMESPACES = ("net", "mnt", "uts")


@dataclass
class HolderRecord:
    """A namespace-holding process and the namespaces it holds."""

    process: ProcessId
    namespaces: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, pid: int, kinds=NAMESPACES) -> HolderRecord:
        process = ProcessId.of(pid)
        if process is None:
            raise ProcessLookupError(pid)
        namespaces = {}
        for kind in kinds:
            namespace = namespace_id(pid, kind)
            if namespace is None:  # the process is gone
                raise ProcessLookupError(pid)
            namespaces[kind] = namespace
        return cls(process, namespaces)

    def alive(self) -> bool:
        return self.process.alive() and all(
            namespace_id(self.process.pid, k) == v for k, v in self.namespaces.items())

    def to_json(self) -> dict:
        return {"process": self.process.to_json(),
                "namespaces": {k: list(v) for k, v in self.namespaces.items()}}

    @classmethod
    def from_json(cls, value: dict) -> HolderRecord:
        return cls(ProcessId.from_json(value["process"]),
                   {k: tuple(v) for k, v in value["namespaces"].items()})


@dataclass
class LabState:
    name: str
    switch: HolderRecord | None = None
    nodes: dict[str, HolderRecord] = field(default_factory=dict)
    ready: bool = False
    up_seconds: float | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "switch": self.switch.to_json() if self.switch else None,
            "nodes": {n: r.to_json() for n, r in self.nodes.items()},
            "ready": self.ready,
            "up_seconds": self.up_seconds,
        }

    @classmethod
    def from_json(cls, value: dict) -> LabState:
        return cls(
            name=value["name"],
            switch=HolderRecord.from_json(value["switch"]) if value.get("switch") else None,
            nodes={n: HolderRecord.from_json(r) for n, r in value.get("nodes", {}).items()},
            ready=bool(value.get("ready")),
            up_seconds=value.get("up_seconds"),
        )

    def holders(self) -> list[HolderRecord]:
        return ([self.switch] if self.switch else []) + list(self.nodes.values())

    # -- file --------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None  # a torn write: treat as unknown (down still sweeps by marker)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)
