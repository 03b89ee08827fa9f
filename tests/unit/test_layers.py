"""The package's layers point one way, and no modules import each other in a circle.

Every import counts, the ones inside functions too (a lazy import is still a dependency).
The layers, lowest first:

- the node's basics: ``settings``, ``fileio``, ``store``, ``hosts``, ``services``, ``options``,
  ``cron``, ``peer``, ``eventlog`` (the node's event logs), ``exit_status``;
- ``zfs`` (typed ZFS commands on a host);
- ``replication`` (the engine) and ``config`` (the configuration and its sync), which know
  nothing of each other;
- ``restore`` (applies a configuration to the replicas it finds);
- ``plain_commands`` and ``ssh_setup``: ``retadm status`` and ``retadm inc`` without cmd2,
  shared by the shell and the launcher's one-shot fast path, and init's offer to set ssh up;
- ``plain_init``: ``retadm init``'s wizard without cmd2 (it previews a dry run as
  ``plain_commands`` does), shared likewise;
- the application: ``commands``, ``shell`` and ``autosync_receive`` (the partner's end of
  autosync);
- ``launcher``, the console script, which runs one-shot ``retadm status``/``inc``/``init`` lines itself
  and hands every other line to the shell.

Besides, the one-shot path never imports cmd2: what importing the console script's module
(``launcher``) imports at module level, followed through the package, names neither cmd2 nor
the libraries behind its interface (prompt_toolkit, rich) nor tabulate; the shell and
tabulate are imported inside functions, by the lines that need them.

Run alone: ``pytest tests/unit/test_layers.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ovios_shell_retadm"
NAME = PACKAGE.name

BASICS = {"settings", "fileio", "store", "hosts", "key_exchange", "captured", "services", "options", "cron", "peer",
          "eventlog", "exit_status", "__init__"}
LAYER_OF_COMPONENT = {**dict.fromkeys(BASICS, 0), "zfs": 1, "replication": 2, "config": 2, "restore": 3,
                      "plain_commands": 4, "ssh_setup": 4, "plain_init": 5,
                      "commands": 6, "shell": 6, "autosync_receive": 6, "launcher": 7}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: the console script's module, and what a one-shot ``retadm status``/``inc`` must not import
ONE_SHOT_ENTRY = f"{NAME}.launcher"
SHELL_LIBRARIES = {"cmd2", "prompt_toolkit", "rich", "tabulate"}


def _imported_names(path: Path, module: str, *, module_level: bool = False) -> set[str]:
    """Every module name ``module`` imports (relative imports resolved), or, with ``module_level``,
    only those its body imports when it is imported (not inside functions or classes)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in tree.body if module_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _ours(names: set[str]) -> set[str]:
    return {name for name in names if name == NAME or name.startswith(NAME + ".")}


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: {name for name in _ours(_imported_names(path, module)) if name in modules and name != module}
            for module, path in modules.items()}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_component_has_a_layer() -> None:
    assert {_component(module) for module in _graph()} <= set(LAYER_OF_COMPONENT)


def test_no_import_points_up_or_sideways_between_replication_and_config() -> None:
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            here, there = _component(module), _component(target)
            if here == there or target == NAME:
                continue
            up = LAYER_OF_COMPONENT[there] > LAYER_OF_COMPONENT[here]
            sideways = LAYER_OF_COMPONENT[there] == LAYER_OF_COMPONENT[here] and here not in BASICS
            if up or sideways:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_one_shot_path_never_imports_cmd2() -> None:
    modules = _modules()
    loaded: set[str] = set()
    wrong = []
    to_visit = [ONE_SHOT_ENTRY]
    while to_visit:
        module = to_visit.pop()
        if module in loaded:
            continue
        loaded.add(module)
        names = _imported_names(modules[module], module, module_level=True)
        wrong += [f"{module} -> {name}" for name in sorted(names) if name.split(".")[0] in SHELL_LIBRARIES]
        parents = {".".join(name.split(".")[:i]) for name in _ours(names) for i in range(1, name.count(".") + 2)}
        to_visit += [name for name in parents if name in modules]
    assert wrong == []
    assert not loaded & {f"{NAME}.shell", f"{NAME}.commands"}, sorted(loaded)
