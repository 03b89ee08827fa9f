"""``retadm init`` in plain Python, without cmd2: the wizard's questions, its checks, and the
start of the full send in the background.

The shell's ``retadm init`` (:mod:`.commands.retadm`) runs :class:`InitWizard` with the shell
as its terminal when a person sits at one; a one-shot ``ovios-shell retadm init …`` with no
terminal (a script, an automation) runs it from :mod:`.launcher` without building the shell,
as ``inc`` and ``status`` do (:mod:`.plain_commands`).  Without a terminal nothing is asked:
an answer not given as an option takes its default, or is a usage error where there is none.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from . import options, settings
from .config import autosync
from .exit_status import FAILED, USAGE, CommandError
from .hosts import LocalHost, SshHost
from .plain_commands import Output, ParserT, preview
from .replication import background_send, preflight
from .replication.pipeline import parse_rate
from .replication.preflight import PreflightError
from .replication.retention import DEFAULT as DEFAULT_RETENTION, Retention, RetentionError
from .replication.task_run import FULL, RunFailed, TaskRun
from .replication.task_store import DECRYPTED, RAW, TaskRecord, TaskStore, new_identity
from .store import StoreError, TaskKey
from .zfs import Candidate, Landing, ZfsNode


class Terminal(Protocol):
    """Where a person answers the wizard (the shell: ``cmd2.Cmd``'s methods of these names)."""

    def read_input(self, prompt: str, *, choices: Iterable[str] | None = None) -> str: ...

    def select(self, opts: Sequence[str], prompt: str) -> str: ...


# -- the arguments ----------------------------------------------------------------------------

def bandwidth(text: str) -> int | None:
    """``--bandwidth``: bytes a second; ``none`` (edit) lifts the limit."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def retention(text: str) -> Retention:
    """``--retention``: a policy (see retention.Retention.parse)."""
    try:
        return Retention.parse(text)
    except RetentionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def init_parser(parser_class: Callable[..., ParserT]) -> ParserT:
    """``retadm init``'s arguments, in a parser of ``parser_class`` (the shell adds completion)."""
    init = parser_class(
        description="The wizard: destination host, dataset, remote pool and name, properties yes/no. "
        "Every answer can be given as an option, so init also runs with no terminal.",
    )
    init.add_argument("dataset", nargs="?", help="the local dataset (skips the pick)")
    init.add_argument("--dest", help="destination host (IP or name); a dataset already replicated elsewhere gets "
                      "a second task (fan-out)")
    init.add_argument("--remote-pool", help="pool on the destination")
    init.add_argument("--remote-name", help="dataset name on the destination (default: the last component)")
    init.add_argument("--properties", choices=("yes", "no"),
                      help="replicate the dataset's properties (a LUN's mappings, a volume's SMB/NFS options)")
    init.add_argument("--decrypted", action="store_true",
                      help="an encrypted dataset that cannot travel raw (encrypted, the key staying here) is "
                      "replicated decrypted: the replica is not encrypted")
    init.add_argument("--bandwidth", metavar="RATE", type=bandwidth,
                      help="limit the task's transfers to RATE a second (e.g. 10M, 512K; default: no limit)")
    init.add_argument("--retention", metavar="POLICY", type=retention,
                      help="the restore points the replica keeps: KIND=N,… with KIND last, hourly, daily, weekly "
                      f"or monthly, or 'none' (default: {DEFAULT_RETENTION.text})")
    init.add_argument("--recursive", action="store_true",
                      help="not offered: a task replicates one dataset, its children each need a task of their own")
    init.add_argument("--dry-run", action="store_true", help="check and show what would be done; change nothing")
    return init


def pick_dataset(terminal: Terminal | None, verb: str, choices: Callable[[], Sequence[str]], none_left: str) -> str:
    """The dataset a person picks from ``choices()`` on ``terminal``, for a command given none
    (init's, and the verbs that name a task).  With nobody to ask, a usage error; with nothing
    to offer, ``none_left``; end of input or ^C cancels."""
    if terminal is None:
        raise CommandError("the dataset is required when there is no terminal", USAGE)
    offered = choices()
    if not offered:
        raise CommandError(none_left)
    try:
        return terminal.select(offered, f"Select the dataset to {verb}: ")
    except (EOFError, KeyboardInterrupt):
        raise CommandError("cancelled; nothing was changed") from None


# -- the wizard -------------------------------------------------------------------------------

class InitWizard:
    """One ``retadm init``: ask what the options did not say (``terminal``: None when nobody can
    answer), check both nodes, record the task and start its full send in the background
    (``start_worker``: how, see :mod:`.replication.background_send`)."""

    def __init__(self, out: Output, warn: Output, terminal: Terminal | None,
                 partners: Callable[[], Iterable[str]] = lambda: (),
                 pools_of: Callable[[str], Iterable[str]] = lambda _address: (),
                 start_worker: Callable[[TaskKey], int] = background_send.start):
        self.out = out
        self.warn = warn
        self.terminal = terminal
        self.start_worker = start_worker
        #: what Tab offers at the questions of the destination and of its pool
        self.partners = partners
        self.pools_of = pools_of

    def run(self, args: argparse.Namespace) -> int:
        if args.recursive:
            raise CommandError("--recursive is not offered: a task replicates one dataset, as the guide says, so that "
                               "each dataset keeps its own schedule, restore points and failover; give each child a "
                               "task of its own ('retadm init POOL/DATASET/CHILD')", USAGE)
        tasks = TaskStore()
        local = ZfsNode(LocalHost())
        try:
            dest_address = self.ask("Destination Host (IP/Name): ", args.dest, "--dest", choices=self.partners)
            dest_host, reached_back = self._reach_both_ways(dest_address)
            dataset = args.dataset or self._pick_dataset(local, tasks)
            source = preflight.candidate(local, dataset)  # (one call for the checks of the source)
            kind = preflight.source_dataset(source)
            children = preflight.unreplicated_children(source.descendants, tasks)
            if children:
                self.warn(f"warning: {preflight.children_note(dataset, children)}")
            dest = ZfsNode(dest_host)
            pool = self.ask("Remote Pool Name: ", args.remote_pool, "--remote-pool",
                            choices=lambda: self.pools_of(dest_address))
            default_name = dataset.rsplit("/", 1)[-1]
            name = self.ask(f"Remote Dataset Name [{default_name}]: ", args.remote_name, "--remote-name", default_name)
            remote = f"{pool}/{name}"
            preflight.new_target(dataset, dest_address, remote, tasks)
            landing = preflight.landing(dest, remote)  # (one call for the checks of the destination)
            preflight.remote_pool(landing, dest_address)
            preflight.remote_absent(landing, dest_address)
            properties = self._ask_properties(args.properties, kind)
            cascade = preflight.is_replica(source)
            kept = None if cascade else self._ask_retention(args.retention)
            mode = self.send_mode(source, landing, dest_address, args.decrypted)
            flags = preflight.send_flags(source, landing, mode)
            self._warn_autosync(dataset, remote, properties)
            source_address = reached_back()
        except PreflightError as exc:
            raise CommandError(str(exc), USAGE if isinstance(exc, preflight.InvalidValue) else FAILED) from exc
        record = TaskRecord(dataset=dataset, destination=dest_address, remote_dataset=remote, properties=properties,
                            source_address=source_address, identity=new_identity(),
                            cascade=cascade, send_mode=mode, send_flags=flags, bandwidth=args.bandwidth,
                            retention=kept.text if kept else None)
        if mode == RAW:
            self.out(f"{dataset} is encrypted: it is replicated raw (the replica stays encrypted; its key stays "
                     "here, and 'retadm promote' on the partner needs it)")
        elif mode == DECRYPTED:
            self.warn(f"warning: {dataset} is encrypted, but its replica on {dest_address} will NOT be (--decrypted)")
        if args.dry_run:
            return preview(TaskRun(record, FULL, tasks, source=local, destination=dest), self.out)
        if not tasks.create(record):
            raise CommandError(f"{dataset} is already replicated to {record.target} (see 'retadm status')")
        try:
            self.start_worker(record.key)
        except (RunFailed, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.out("[+] Full replication started in background.")
        self.out(f"Monitor {settings.repl_log_path()}")
        return 0

    def ask(self, prompt: str, given: str | None, option: str, default: str | None = None,
            choices: Callable[[], Iterable[str]] | None = None) -> str:
        """``given``, or the answer to ``prompt`` on the terminal (Tab completes ``choices()``,
        asked only then), or ``default`` without one."""
        if given is not None:
            return given
        if self.terminal is None:
            if default is not None:
                return default
            raise CommandError(f"{option} is required when there is no terminal", USAGE)
        try:
            answer = self.terminal.read_input(prompt, choices=list(choices()) if choices else None).strip()
        except (EOFError, KeyboardInterrupt):
            raise CommandError("cancelled; nothing was changed") from None
        if not answer and default is not None:
            return default
        if not answer:
            raise CommandError(f"an answer is required ({option}); nothing was changed", USAGE)
        return answer

    def _pick_dataset(self, node: ZfsNode, tasks: TaskStore) -> str:
        return pick_dataset(self.terminal, "replicate", lambda: preflight.replicable_datasets(node, tasks),
                            "no dataset left to replicate (pools and replicated datasets are not offered)")

    def _reach_both_ways(self, address: str) -> tuple[SshHost, Callable[[], str]]:
        """The destination, over passwordless ssh, and what gives this node's address as it
        sees it (it reaches back there).  Where a direction is missing, a person at a terminal
        is offered to set it up on the spot, before any other question; anyone else gets the
        commands that do, and meanwhile the other checks go on: reaching back opens a new ssh
        connection, the slowest of them on a slow node."""
        try:
            host = preflight.destination(address)
            if self.terminal is None:
                from concurrent.futures import ThreadPoolExecutor  # (not for status and inc)

                reaching_back = ThreadPoolExecutor(max_workers=1)
                pending = reaching_back.submit(preflight.reverse_ssh, host)
                reaching_back.shutdown(wait=False)  # its one thread ends with the call
                return host, pending.result
            source = preflight.reverse_ssh(host)
        except preflight.NoPasswordlessSsh as missing:
            if self.terminal is None:
                raise
            from .ssh_setup import SshSetup  # pexpect: only where a person sets ssh up

            setup = SshSetup(lambda prompt, default: self.ask(prompt, None, "", default), self.out)
            host, source = setup.offer(address, missing)
        return host, lambda: source

    def _warn_autosync(self, dataset: str, remote: str, properties: bool) -> None:
        """With autosync on, the guide (section 8) wants the same pool/name and properties: warn."""
        try:
            if not options.is_on(autosync.OPTION):
                return
        except (StoreError, options.OptionError):
            return
        problems = ([f"the replica will be {remote}, not {dataset}"] if remote != dataset else []) + \
            (["properties are not replicated"] if not properties else [])
        if problems:
            self.warn(f"warning: autosync is on but {' and '.join(problems)}: the synced configuration names "
                      f"{dataset}, so after a failover 'restore' will not match it (use the same pool/name and "
                      "--properties yes)")

    def send_mode(self, source: Candidate, landing: Landing, where: str, decrypted: bool) -> str:
        """Raw for an encrypted dataset; where it cannot be, a refusal with the reason, unless
        a decrypted replica is asked for (--decrypted, or yes in the wizard)."""
        try:
            return preflight.send_mode(source, landing, where, decrypted=decrypted)
        except preflight.RawImpossible as exc:
            if self.terminal is None:
                raise
            self.out(str(exc))
        answer = self.ask("Replicate it decrypted (the replica is not encrypted)? (yes/no) [no]: ", None,
                          "--decrypted", "no").lower()
        if not answer.startswith("y"):
            raise CommandError("cancelled: an encrypted dataset is not replicated decrypted without a yes; "
                               "nothing was changed")
        return DECRYPTED

    def _ask_properties(self, given: str | None, kind: str) -> bool:
        what = "its LUN mapping properties" if kind == "volume" else "its SMB and NFS options"
        if given is None and self.terminal is not None:
            self.out(f"Replicating properties carries {what} to the destination with the data.")
        answer = self.ask("Replicate properties? (yes/no) [no]: ", given, "--properties", "no",
                          choices=lambda: ("yes", "no")).lower()
        if answer not in ("yes", "y", "no", "n"):
            raise CommandError(f"answer yes or no, not {answer!r}", USAGE)
        return answer.startswith("y")

    def _ask_retention(self, given: Retention | None) -> Retention:
        if given is None and self.terminal is not None:
            self.out("Restore points are older snapshots the replica keeps, so a mistake here (data deleted or "
                     "encrypted) can be undone there: KIND=N,… with KIND last, hourly, daily, weekly or monthly, "
                     "or none.")
        answer = self.ask(f"Restore points to keep [{DEFAULT_RETENTION.text}]: ",
                          given.text if given else None, "--retention", DEFAULT_RETENTION.text)
        try:
            return Retention.parse(answer)
        except RetentionError as exc:
            raise CommandError(str(exc), USAGE) from None
