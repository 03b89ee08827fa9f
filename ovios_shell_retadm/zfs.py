"""Typed calls to the ``zfs``/``zpool`` command-line tools on one :class:`Host`.

The same code must drive OpenZFS 2.x (what OviOS nodes run) and older ZFS
implementations such as Debian's zfs-fuse 0.7 (pool version 23, the everyday
test lab).  Verified against zfs-fuse 0.7.0 here:

* ``zfs list`` and ``zpool list``/``zpool get`` have **no** ``-p`` (and
  ``zpool get`` no ``-H``), and ``zfs list -o guid`` prints a rounded ``4.25E``;
  ``zfs get -H -p`` works, so numbers are always read through ``zfs get``.
  ``zfs get`` has no ``-t``: :meth:`ZfsNode.history` filters names itself.
* no ``zfs holds`` (it needs a missing ``pyzfs.py``), no bookmarks, no resume
  tokens (``receive -s``), no ``receive -o``, no ``send -n/-v/-P/-L/-c``, no
  ``written`` property, no zvols (no ``/dev/zfs``).
* ``receive -u`` is accepted (undocumented in its usage text) and works; ``receive -x``
  is not.  Received properties work as on OpenZFS: ``zfs get -o received``,
  ``zfs inherit`` hides a received value (the local "inherit" wins over what later
  receives bring), ``zfs inherit -S`` reverts to it.
* ``hold``/``release`` report per snapshot ("tag already exists on this
  dataset" / "no such tag on this dataset"), like OpenZFS.

Capabilities are therefore probed, not assumed (:meth:`ZfsNode.capabilities`),
by asking the CLI's own option parser: ``zfs receive -s`` with no operand fails
with "missing snapshot argument" where ``-s`` exists and "invalid option" where it
does not.  All probes run in one remote call and the answer is cached in memory
and under ``settings.run_dir()``, so a cron run does not pay for it again.

Every name is validated before it reaches a command line (:class:`InvalidName`),
even though no shell ever parses our local argv and remote ones are quoted: a
name that validates is one a user can read, and an option can never be smuggled
in as a dataset.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

from . import settings
from .fileio import make_private_dir, write_atomically
from .hosts import DEFAULT_TIMEOUT, CommandFailed, Host, HostError, Result

# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

#: ZFS_MAX_DATASET_NAME_LEN (256) less the terminating NUL; applies to the whole
#: name, ``pool/fs@snap`` included.
MAX_NAME_LEN = 255

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
_ALLOWED = "letters, digits, '_', '.', ':' and '-'"
#: snapshot and bookmark names may also hold spaces, as ZFS allows (``@before upgrade``): they
#: are the user's, and only ever travel as one argv element or one tab-separated field
_SHORT_NAME_CHARS = _NAME_CHARS | {" "}
_SHORT_ALLOWED = "letters, digits, spaces, '_', '.', ':' and '-'"
#: a native or user property, or one that takes a snapshot or bookmark (``written@monday``)
_PROPERTY = re.compile(r"[a-z0-9][a-z0-9_.:+-]*([@#][A-Za-z0-9_.:+-]+)?")
_TOKEN = re.compile(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*")
_DATASET_TYPES = ("filesystem", "volume", "snapshot", "bookmark")


class ZfsError(Exception):
    """A ZFS-level problem that is not a failed command (bad name, missing feature)."""


class InvalidName(ZfsError, ValueError):
    """A dataset, snapshot, bookmark, tag or property name we refuse to use."""


class Unsupported(ZfsError):
    """The node's ZFS lacks what was asked for (e.g. bookmarks on zfs-fuse)."""


class NoSuchDataset(CommandFailed):
    """zfs/zpool said the dataset, snapshot or pool does not exist."""


class DatasetBusy(CommandFailed):
    """zfs refused to destroy a snapshot that is busy: held (by another tag than the one
    released), or being sent."""


class SnapshotCloned(DatasetBusy):
    """zfs refused to destroy a snapshot that has a clone (say, a restore point an
    administrator cloned to take files back from)."""


def _check_component(kind: str, whole: str, part: str, chars: frozenset[str] = _NAME_CHARS,
                     allowed: str = _ALLOWED) -> None:
    if part == "":
        raise InvalidName(f"invalid {kind} {whole!r}: empty name component")
    if part in (".", ".."):
        raise InvalidName(f"invalid {kind} {whole!r}: {part!r} is not a name")
    for ch in part:
        if ch not in chars:
            raise InvalidName(f"invalid {kind} {whole!r}: character {ch!r} not allowed (use {allowed})")


def _check_text(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidName(f"invalid {kind} {value!r}: must be a non-empty string")
    if len(value) > MAX_NAME_LEN:
        raise InvalidName(f"invalid {kind} {value[:40]!r}...: longer than {MAX_NAME_LEN} characters")
    return value


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it is a filesystem/volume name (``pool/a/b``), else raise.

    ZFS rules, stricter where ZFS is lax: components of letters, digits and
    ``_ . : -`` separated by single ``/``; the pool begins with a letter; no
    ``.``/``..`` component; no ``@``/``#`` (those name snapshots and bookmarks);
    no spaces (ZFS allows them, our users do not need them).
    """
    _check_text("dataset name", name)
    for mark, what in (("@", "snapshot"), ("#", "bookmark")):
        if mark in name:
            raise InvalidName(f"invalid dataset name {name!r}: {mark!r} belongs to a {what} name")
    parts = name.split("/")
    for part in parts:
        _check_component("dataset name", name, part)
    if not parts[0][0].isalpha():
        raise InvalidName(f"invalid dataset name {name!r}: the pool name must begin with a letter")
    return name


def validate_pool_name(name: str) -> str:
    """Return ``name`` if it is a pool name (a dataset name without ``/``)."""
    validate_dataset_name(name)
    if "/" in name:
        raise InvalidName(f"invalid pool name {name!r}: a pool name has no '/'")
    return name


def _validate_short(kind: str, name: str, *, spaces: bool = False) -> str:
    _check_text(kind, name)
    if spaces:
        _check_component(kind, name, name, _SHORT_NAME_CHARS, _SHORT_ALLOWED)
    else:
        _check_component(kind, name, name)
    if name[0] in "-.":
        raise InvalidName(f"invalid {kind} {name!r}: must not begin with {name[0]!r}")
    return name


def validate_snapshot_name(name: str) -> str:
    """Return ``name`` if it is a snapshot's own name (the part after ``@``); spaces are
    allowed, as ZFS allows them (``zfs snapshot 'data/smbvol@before upgrade'``)."""
    return _validate_short("snapshot name", name, spaces=True)


def validate_bookmark_name(name: str) -> str:
    """Return ``name`` if it is a bookmark's own name (the part after ``#``); spaces as for
    snapshots."""
    return _validate_short("bookmark name", name, spaces=True)


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is usable as a hold tag (OpenZFS reserves a leading '.')."""
    return _validate_short("hold tag", tag)


def validate_property_name(name: str) -> str:
    """Return ``name`` if it is a native or user (``module:prop``) property name."""
    _check_text("property name", name)
    if not _PROPERTY.fullmatch(name):
        raise InvalidName(f"invalid property name {name!r}")
    return name


def _validate_value(name: str, value: str) -> str:
    if not isinstance(value, str) or any(ch in value for ch in "\0\n\r\t"):
        raise InvalidName(f"invalid value for {name}: {value!r} (no tabs, newlines or NUL)")
    return value


def snapshot_full_name(dataset: str, snapshot: str) -> str:
    """``dataset@snapshot``, both validated, within the length limit."""
    full = f"{validate_dataset_name(dataset)}@{validate_snapshot_name(snapshot)}"
    return _check_text("snapshot", full)


def bookmark_full_name(dataset: str, bookmark: str) -> str:
    """``dataset#bookmark``, both validated, within the length limit."""
    full = f"{validate_dataset_name(dataset)}#{validate_bookmark_name(bookmark)}"
    return _check_text("bookmark", full)


def split_snapshot(full: str) -> tuple[str, str]:
    """``("pool/fs", "snap")`` from ``"pool/fs@snap"``, validating both parts."""
    _check_text("snapshot", full)
    dataset, at, snapshot = full.partition("@")
    if not at:
        raise InvalidName(f"invalid snapshot {full!r}: expected dataset@name")
    snapshot_full_name(dataset, snapshot)
    return dataset, snapshot


def pool_of(dataset: str) -> str:
    """The pool a dataset (or snapshot, or bookmark) lives in."""
    return re.split(r"[/@#]", dataset, maxsplit=1)[0]


def _validate_target(name: str) -> str:
    """A dataset or a full snapshot name: what ``zfs get``/``set``/``list`` take."""
    if "@" in name:
        split_snapshot(name)
        return name
    return validate_dataset_name(name)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    type: str  # "filesystem" or "volume"

    @property
    def pool(self) -> str:
        return pool_of(self.name)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as replication sees it: identified by ``guid``, ordered by ``createtxg``."""

    dataset: str
    name: str
    guid: int
    createtxg: int
    creation: int  # seconds since the epoch
    userrefs: int = 0  # how many holds it carries, anyone's

    @property
    def full(self) -> str:
        return f"{self.dataset}@{self.name}"


@dataclass(frozen=True)
class Bookmark:
    """A bookmark: a snapshot's guid and txg without its data (an incremental base)."""

    dataset: str
    name: str
    guid: int
    createtxg: int
    creation: int

    @property
    def full(self) -> str:
        return f"{self.dataset}#{self.name}"


@dataclass(frozen=True)
class Encryption:
    """A dataset's native encryption as ``zfs get`` reports it."""

    encryption: str  # "off", "aes-256-gcm", ...
    encryptionroot: str  # the dataset whose key unlocks this one; "" when not encrypted
    keystatus: str  # "available", "unavailable"; "" when not encrypted

    @property
    def encrypted(self) -> bool:
        return self.encryption not in ("off", "-", "")

    @property
    def key_loaded(self) -> bool:
        return not self.encrypted or self.keystatus == "available"


#: what :func:`encryption_of` reads
ENCRYPTION_PROPERTIES = ("encryption", "encryptionroot", "keystatus")


def encryption_of(values: Mapping[str, str]) -> Encryption:
    """:class:`Encryption` from :data:`ENCRYPTION_PROPERTIES`' raw values (``-``: none)."""
    def value(prop: str) -> str:
        found = values.get(prop, "-")
        return "" if found == "-" else found
    return Encryption(value("encryption") or "off", value("encryptionroot"), value("keystatus"))


@dataclass(frozen=True)
class History:
    """A dataset's own snapshots and bookmarks, oldest first."""

    snapshots: tuple[Snapshot, ...]
    bookmarks: tuple[Bookmark, ...]
    #: bytes written to the dataset since its newest snapshot (the ``written`` property);
    #: None where ZFS cannot tell (zfs-fuse)
    written_bytes: int | None = None
    #: the dataset's own type ("filesystem", "volume"); None where the listing did not say
    kind: str | None = None

    @property
    def written(self) -> bool | None:
        """Whether the dataset was written since its newest snapshot; None: ZFS cannot tell."""
        return None if self.written_bytes is None else self.written_bytes > 0


@dataclass(frozen=True)
class Survey:
    """One dataset as replication looks at it: :meth:`ZfsNode.survey`."""

    history: History
    #: the properties asked for: (value, source)
    properties: Mapping[str, tuple[str, str]]
    #: the held snapshots' full names, with the tags asked for that each one carries
    holds: Mapping[str, set[str]]


@dataclass(frozen=True)
class Candidate:
    """A dataset that would become a task's source, as :meth:`ZfsNode.candidate` sees it in one
    call: what ``retadm init`` checks of it here before anything is created."""

    dataset: str
    #: "filesystem" or "volume"; None: there is no such dataset
    kind: str | None
    #: the filesystems and volumes under it, at any depth
    descendants: tuple[str, ...]
    #: the properties asked for: (value, source); ``("-", "-")`` each where the dataset is missing
    properties: Mapping[str, tuple[str, str]]
    #: its encryption; None where it is missing or this ZFS has no native encryption
    encryption: Encryption | None
    #: this node's capabilities (cached: see :meth:`ZfsNode.capabilities`)
    capabilities: Capabilities


@dataclass(frozen=True)
class Landing:
    """Where a new replica would be received, as :meth:`ZfsNode.landing` sees it in one call:
    what ``retadm init`` checks of the destination before anything is created."""

    dataset: str
    #: the pool's health ("ONLINE", "DEGRADED", …); None: there is no such pool
    health: str | None
    exists: bool
    #: whether the dataset the replica would be received under exists (the pool counts)
    parent_exists: bool
    #: that parent's encryption; None where it is missing or this ZFS has no native encryption
    parent_encryption: Encryption | None
    #: the node's capabilities, probed with the rest (the pool may be new since the last probe)
    capabilities: Capabilities

    @property
    def pool(self) -> str:
        return pool_of(self.dataset)

    @property
    def parent(self) -> str:
        return self.dataset.rpartition("/")[0]


# ---------------------------------------------------------------------------
# Capabilities
# ---------------------------------------------------------------------------

#: Pool features whose state the probe reads (``feature@...`` on OpenZFS).
_FEATURES = ("bookmarks", "extensible_dataset", "large_blocks", "embedded_data", "encryption", "lz4_compress",
             "zstd_compress")

#: What the CLI says of a subcommand or option it does not know.
_REFUSALS = ("invalid option", "unrecognized command", "internal error", "not found")
_REFUSED = re.compile("|".join(re.escape(words) for words in _REFUSALS))

#: the pools' features (every pool's: one may be new since the last probe)
_FEATURES_PROBE = ("features", "zpool get -H -o name,property,value " + ",".join(f"feature@{f}" for f in _FEATURES))

#: (key, shell command) pairs.  Nothing is created, read from stdin or destroyed.
_PROBES: tuple[tuple[str, str], ...] = (
    ("version", "zfs version"),
    ("properties", "zfs get"),
    ("bookmark", "zfs bookmark"),
    ("holds", "zfs holds -H"),
    ("dev_zfs", "test -c /dev/zfs && echo present"),
    _FEATURES_PROBE,
)

#: (subcommand, ((key, options), ...)).  Options are probed by the CLI's own getopt: with no
#: operand, known flags end in "missing ... argument", an unknown one in "invalid option".
#: A subcommand's options are asked all together first: where the CLI knows every one
#: (OpenZFS 2.x) that one run answers for each; where it refuses one (an older ZFS), each
#: is asked on its own.
_OPTION_PROBES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("zfs receive", (("receive_u", "-u"), ("receive_s", "-s"), ("receive_o", "-o readonly=on"),
                     ("receive_x", "-x mountpoint"))),
    ("zfs send", (("send_estimate", "-n -v -P"), ("send_large_blocks", "-L"), ("send_compressed", "-c"),
                  ("send_embedded", "-e"), ("send_raw", "-w"))),
)

_PROBE_KEYS = frozenset([key for key, _ in _PROBES] + [key for _, options in _OPTION_PROBES for key, _ in options])


def _probe(key: str, command: str) -> str:
    return f"echo '@@{key}'; {command} </dev/null 2>&1"


def _option_probe(subcommand: str, options: tuple[tuple[str, str], ...]) -> str:
    together = " ".join(flags for _, flags in options)
    refused = "|".join(f"*'{words}'*" for words in _REFUSALS)
    one_by_one = "; ".join(_probe(key, f"{subcommand} {flags}") for key, flags in options)
    keys = " ".join(key for key, _ in options)
    return (f"o=$({subcommand} {together} </dev/null 2>&1); case $o in {refused}) {one_by_one};; "
            f"*) for k in {keys}; do echo \"@@$k\"; printf '%s\\n' \"$o\"; done;; esac")


#: One constant script (no user input in it) that runs every probe.
PROBE_SCRIPT = "; ".join([_probe(key, command) for key, command in _PROBES]
                         + [_option_probe(subcommand, options) for subcommand, options in _OPTION_PROBES])

#: The probe again, for capabilities probed before on a ZFS of version ``$1`` (as the probe
#: reads it: "" where ``zfs version`` is missing): the whole :data:`PROBE_SCRIPT` where
#: ``zfs version`` now says another, else only the pools' features, which change without
#: the ZFS changing (a pool created or upgraded since).
REPROBE_SCRIPT = (f'v=$(zfs version </dev/null 2>&1 | head -n 1); case $v in zfs-*) ;; *) v=;; esac; '
                  f'if [ "$v" = "$1" ]; then {_probe(*_FEATURES_PROBE)}; else {PROBE_SCRIPT}; fi')


@dataclass(frozen=True)
class Capabilities:
    """What one node's ZFS can do.  Defaults describe the oldest ZFS we meet.

    ``bookmarks`` and ``resume_tokens`` say what the *CLI* knows; whether a given
    pool has the feature enabled is :meth:`bookmarks_on` / :meth:`resumable_on`.
    """

    version: str = ""  # "zfs-2.3.2-1"; "" where `zfs version` is missing (zfs-fuse)
    bookmarks: bool = False  # zfs bookmark, send -i #bookmark
    resume_tokens: bool = False  # receive -s, receive_resume_token, send -t
    receive_u: bool = False  # receive without mounting
    receive_o: bool = False  # receive -o property=value
    receive_x: bool = False  # receive -x property (the received value stays hidden)
    send_estimate: bool = False  # send -n -v -P (size estimate, parsable progress)
    send_large_blocks: bool = False  # send -L
    send_compressed: bool = False  # send -c (and, on the receiving side, a ZFS that understands such streams)
    send_embedded: bool = False  # send -e
    written: bool = False  # the `written` property
    zvols: bool = False
    holds_list: bool = False  # `zfs holds` works
    send_raw: bool = False  # send -w: an encrypted dataset as it is on disk (the key stays here)
    encryption: bool = False  # the `encryption` property (native encryption)
    pool_features: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has_feature(self, pool: str, feature: str) -> bool:
        """Whether ``feature@<feature>`` is enabled or active on ``pool``."""
        return feature in self.pool_features.get(pool, frozenset())

    def bookmarks_on(self, pool: str) -> bool:
        return self.bookmarks and self.has_feature(pool, "bookmarks")

    def resumable_on(self, pool: str) -> bool:
        return self.resume_tokens and self.has_feature(pool, "extensible_dataset")

    def encryption_on(self, pool: str) -> bool:
        """Whether ``pool`` can hold encrypted datasets (receive a raw stream): its
        ``feature@encryption`` is enabled."""
        return self.encryption and self.has_feature(pool, "encryption")

    def to_json(self) -> str:
        data = asdict(self)
        data["pool_features"] = {pool: sorted(feats) for pool, feats in self.pool_features.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Capabilities:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        if not known >= data.keys() or not data.keys() >= known:  # written by another version: probe again
            raise KeyError("capability cache of another version")
        data["pool_features"] = {pool: frozenset(feats) for pool, feats in data["pool_features"].items()}
        return cls(**data)


def _sections(output: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("@@") and line[2:] in _PROBE_KEYS:
            current = sections.setdefault(line[2:], [])
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in sections.items()}


def parse_probe(output: str) -> Capabilities:
    """Capabilities from the output of :data:`PROBE_SCRIPT` (pure, for tests)."""
    out = _sections(output)

    def accepted(key: str) -> bool:
        text = out.get(key, "")
        return bool(text) and not _REFUSED.search(text)

    properties = set(re.findall(r"^\t(\S+)\s+(?:YES|NO)\s", out.get("properties", ""), re.M))
    if not properties:
        raise ZfsError("the zfs command is missing or does not work: " + out.get("properties", "").strip()[:200])
    version = out.get("version", "").splitlines()
    return Capabilities(
        version=version[0].strip() if version and version[0].startswith("zfs-") else "",
        bookmarks=accepted("bookmark"),
        resume_tokens=accepted("receive_s") and "receive_resume_token" in properties,
        receive_u=accepted("receive_u"),
        receive_o=accepted("receive_o"),
        receive_x=accepted("receive_x"),
        send_estimate=accepted("send_estimate"),
        send_large_blocks=accepted("send_large_blocks"),
        send_compressed=accepted("send_compressed"),
        send_embedded=accepted("send_embedded"),
        written="written" in properties,
        zvols="present" in out.get("dev_zfs", ""),
        holds_list=accepted("holds"),
        send_raw=accepted("send_raw"),
        encryption="encryption" in properties,
        pool_features=_pool_features(out.get("features", "")),
    )


def _pool_features(section: str) -> dict[str, frozenset[str]]:
    features: dict[str, set[str]] = {}
    for line in section.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("feature@") and parts[2] in ("enabled", "active"):
            features.setdefault(parts[0], set()).add(parts[1].removeprefix("feature@"))
    return {pool: frozenset(feats) for pool, feats in features.items()}


def parse_reprobe(output: str, before: Capabilities) -> Capabilities:
    """Capabilities from the output of :data:`REPROBE_SCRIPT` run on ``before``'s version
    (pure, for tests): ``before`` with the pools' features read now, or a whole new probe."""
    if "version" in _sections(output):
        return parse_probe(output)
    return replace(before, pool_features=_pool_features(_sections(output).get("features", "")))


class _CapabilityCache:
    """Probed capabilities on disk, per host, for ``ttl`` seconds.

    The cache lives in the run directory (tmpfs: gone at reboot, which is also
    when a local ZFS upgrade takes effect); the TTL bounds how stale a partner's
    entry may get after *its* upgrade.  Failing to read or write it only costs a
    probe.
    """

    ttl = 3600.0

    def __init__(self, host_name: str):
        digest = hashlib.sha256(host_name.encode()).hexdigest()[:20]
        self.path = settings.run_dir() / "zfs-caps" / f"{digest}.json"

    def load(self) -> Capabilities | None:
        try:
            if time.time() - self.path.stat().st_mtime > self.ttl:
                return None
            return Capabilities.from_json(self.path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, caps: Capabilities) -> None:
        try:
            make_private_dir(self.path.parent)
            write_atomically(self.path, caps.to_json(), mode=0o600)
        except OSError:
            pass


def set_locally(source: str) -> bool:
    """Whether a property's ``zfs get`` source says it was set on the dataset itself: not
    inherited, not a default, not received (``send -p``), not a mount's temporary option."""
    return source == "local"


def readonly_of(value_and_source: tuple[str, str]) -> bool | None:
    """Whether ``readonly`` is on, from its ``zfs get`` value and source; None when it cannot be
    known: a mounted filesystem's own mount option (source ``temporary``) hides the dataset's
    setting, and zfs-fuse shows every mounted ``readonly=on`` filesystem so."""
    value, source = value_and_source
    return None if source == "temporary" else value == "on"


# ---------------------------------------------------------------------------
# Command builders for the pipeline (pure)
# ---------------------------------------------------------------------------


def send_argv(
    dataset: str,
    snapshot: str,
    base: str | None = None,
    base_is_bookmark: bool = False,
    intermediates: bool = True,
    properties: bool = False,
    *,
    caps: Capabilities,
    compressed: bool = False,
    large_blocks: bool = False,
    embedded: bool = False,
    progress: bool = False,
    raw: bool = False,
) -> list[str]:
    """``zfs send`` of ``dataset@snapshot``: full, or incremental from ``base``.

    ``base`` is a snapshot (or, with ``base_is_bookmark``, a bookmark) of the
    same dataset, by its own name.  ``intermediates`` sends every snapshot in
    between (``-I``, so user snapshots travel too); a bookmark base only allows
    ``-i``.  ``progress`` adds ``-v -P``: parsable per-second progress on stderr.
    ``raw`` is ``-w``: an encrypted dataset's blocks as they are on disk, so the replica
    stays encrypted and the key never leaves this node (``-w`` carries the encryption
    properties itself; with ``-p`` the others travel too).
    A flag the node lacks raises :class:`Unsupported` rather than being dropped.
    """
    argv = ["zfs", "send"]
    if properties:
        argv.append("-p")
    for wanted, supported, flag in (
        (raw, caps.send_raw, "-w"),
        (large_blocks, caps.send_large_blocks, "-L"),
        (compressed, caps.send_compressed, "-c"),
        (embedded, caps.send_embedded, "-e"),
        (progress, caps.send_estimate, "-v -P"),
    ):
        if wanted:
            if not supported:
                raise Unsupported(f"zfs send {flag} is not supported here")
            argv += flag.split()
    if base is not None:
        if base_is_bookmark:
            if intermediates:
                raise ValueError("an incremental from a bookmark cannot carry intermediates (-I)")
            if not caps.bookmarks:
                raise Unsupported("bookmarks are not supported here")
            argv += ["-i", bookmark_full_name(dataset, base)]
        else:
            argv += ["-I" if intermediates else "-i", snapshot_full_name(dataset, base)]
    argv.append(snapshot_full_name(dataset, snapshot))
    return argv


#: The stream flags a task may send with (:func:`stream_flags`), in the order ``send_argv`` writes them.
LARGE_BLOCKS, COMPRESSED, EMBEDDED = "-L", "-c", "-e"
STREAM_FLAGS = (LARGE_BLOCKS, COMPRESSED, EMBEDDED)

#: compression features whose blocks a compressed (``-c``) or embedded (``-e``) stream carries as
#: they are: a receiving pool without one that the sending pool has could not hold them
_COMPRESSION_FEATURES = ("lz4_compress", "zstd_compress")


def stream_flags(source: Capabilities, source_pool: str, destination: Capabilities, destination_pool: str,
                 *, encrypted_replica: bool = False) -> tuple[str, ...]:
    """The stream flags that both sides support, for a task from ``source_pool`` here to
    ``destination_pool`` there (pure: from the two probes).

    ``-L`` keeps blocks larger than 128K whole: the receiving pool needs ``feature@large_blocks``.
    ``-c`` sends blocks compressed as they are on disk: the receiving ZFS must understand such
    streams (OpenZFS 0.7 and later, which can send them too).  ``-e`` sends the blocks the
    ``embedded_data`` feature stores in their block pointers as they are: the receiving pool
    needs ``feature@embedded_data``, and the replica must not be encrypted (a replica that would
    inherit encryption from its parent there, ``encrypted_replica``: ZFS refuses such streams).
    ``-c`` and ``-e`` also need the receiving pool to have every compression feature the sending
    pool has (``lz4_compress``, ``zstd_compress``).  ``-L`` must never change within one chain of
    incrementals (OpenZFS refuses or corrupts the replica), so a task decides once, at its
    first full send, and records what it chose.
    """
    compression_ok = all(destination.has_feature(destination_pool, f)
                         for f in _COMPRESSION_FEATURES if source.has_feature(source_pool, f))
    flags = []
    if source.send_large_blocks and destination.has_feature(destination_pool, "large_blocks"):
        flags.append(LARGE_BLOCKS)
    if source.send_compressed and destination.send_compressed and compression_ok:
        flags.append(COMPRESSED)
    if source.send_embedded and destination.has_feature(destination_pool, "embedded_data") and compression_ok \
            and not encrypted_replica:
        flags.append(EMBEDDED)
    return tuple(flags)


def resume_send_argv(token: str, *, caps: Capabilities, progress: bool = False) -> list[str]:
    """``zfs send -t <token>``: continue an interrupted resumable receive.  The token carries the
    interrupted stream's own flags (``-L``, ``-c``, ``-e``, ``-w``): none is added here."""
    if not caps.resume_tokens:
        raise Unsupported("resumable send/receive is not supported here")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise InvalidName(f"invalid resume token {str(token)[:40]!r}")
    return ["zfs", "send", *(["-v", "-P"] if progress else []), "-t", token]


def hold_argv(tag: str, snapshots: Sequence[str]) -> list[str]:
    """``zfs hold``: ``tag`` on each of ``snapshots`` (full names)."""
    names = list(dict.fromkeys(snapshots))
    for name in names:
        split_snapshot(name)
    return ["zfs", "hold", validate_tag(tag), *names]


def release_argv(tag: str, snapshots: Sequence[str]) -> list[str]:
    """``zfs release``: ``tag`` from each of ``snapshots`` (full names)."""
    return ["zfs", "release", *hold_argv(tag, snapshots)[2:]]


def destroy_snapshot_argv(dataset: str, name: str) -> list[str]:
    """``zfs destroy`` of exactly one snapshot.  Never a dataset, never recursively: both parts
    are validated separately, so neither a dataset name nor OpenZFS's ``a%b`` range or ``a,b``
    list syntax can get through."""
    full = snapshot_full_name(dataset, name)
    assert full.count("@") == 1
    return ["zfs", "destroy", full]


def destroy_bookmark_argv(dataset: str, name: str) -> list[str]:
    """``zfs destroy`` of exactly one bookmark."""
    return ["zfs", "destroy", bookmark_full_name(dataset, name)]


def set_property_argv(name: str, prop: str, value: str) -> list[str]:
    return ["zfs", "set", f"{validate_property_name(prop)}={_validate_value(prop, value)}", _validate_target(name)]


def values_and_sources_argv(name: str, properties: Sequence[str]) -> list[str]:
    """``zfs get`` of several properties' raw values and sources (:func:`parse_values_and_sources`)."""
    names = [validate_property_name(p) for p in properties]
    return ["zfs", "get", "-H", "-p", "-o", "property,value,source", ",".join(names), _validate_target(name)]


#: what :func:`mount_due` reads of a replica
MOUNT_FACTS = ("mountpoint", "canmount", "mounted")


def mount_due(facts: Mapping[str, tuple[str, str]]) -> bool:
    """Whether a replica with these :data:`MOUNT_FACTS` (value, source) is one a run mounts:
    it may be mounted (``canmount=on``), is not yet, has a path to be mounted at, and that
    path is its own, not the one it received (the source's: a run moves it under the pool
    first)."""
    mountpoint, where = facts["mountpoint"]
    return (facts["canmount"][0] == "on" and facts["mounted"][0] == "no" and mountpoint not in ("none", "legacy")
            and where != "received")


#: after a receive, on its own connection: the replica's (``$1``) :data:`MOUNT_FACTS` and guid,
#: and the guids of the snapshots after ``$2``, in one ``zfs get``; then, where ``$2`` is 1 and
#: :func:`mount_due` holds for the facts (the same rule, in shell), ``zfs mount`` of the replica,
#: and ``mounted`` once more after it mounted (a failed mount is left to the run, which says why)
_SETTLE_SCRIPT = r"""replica=$1 mount=$2
shift 2
facts=$(zfs get -H -p -o name,property,value,source mountpoint,canmount,mounted,guid "$replica" "$@")
status=$?
[ -z "$facts" ] || printf '%s\n' "$facts"
[ "$status" -eq 0 ] && [ "$mount" = 1 ] || exit "$status"
printf '%s\n' "$facts" | awk -F '\t' -v replica="$replica" '
$1 == replica { value[$2] = $3; source[$2] = $4 }
END { exit !(value["canmount"] == "on" && value["mounted"] == "no" && value["mountpoint"] != "none" &&
             value["mountpoint"] != "legacy" && source["mountpoint"] != "received") }' || exit 0
zfs mount "$replica" 2>/dev/null || exit 0
zfs get -H -p -o name,property,value,source mounted "$replica"
"""


def settle_argv(replica: str, snapshots: Sequence[str], *, mount: bool) -> list[str]:
    """After a receive, in one command: the replica's mount facts and the guids of
    ``snapshots`` (its own, full names), and, with ``mount``, the replica mounted where
    :func:`mount_due` says a run mounts it.  What it read: :func:`parse_settled`."""
    names = [validate_dataset_name(replica), *(_validate_target(s) for s in snapshots)]
    return ["sh", "-c", _SETTLE_SCRIPT, "sh", names[0], "1" if mount else "0", *names[1:]]


def parse_settled(out: str, replica: str) -> tuple[dict[str, tuple[str, str]] | None, dict[str, int]]:
    """What :func:`settle_argv` read, whatever its exit status (a snapshot destroyed meanwhile
    leaves the rest): the replica's :data:`MOUNT_FACTS` (None if missing), as they are after
    a mount it made, and the guid of each snapshot it found."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 4:
            rows[(fields[0], fields[1])] = (fields[2], fields[3])  # a later line is the newer fact
    facts = {p: rows[(replica, p)] for p in MOUNT_FACTS if (replica, p) in rows}
    guids = {name: int(value) for (name, prop), (value, _) in rows.items()
             if prop == "guid" and "@" in name and value.isdigit()}
    return (facts if len(facts) == len(MOUNT_FACTS) else None), guids


def receive_then(receive: Sequence[str], after: Sequence[Sequence[str]],
                 gated: Sequence[Sequence[str]] = (), looks: Sequence[Sequence[str]] = ()) -> list[str]:
    """One ``sh -c`` that runs ``receive`` (its stdin is the stream) and, once it succeeded:
    each command of ``after`` whatever the ones before did; then each of ``gated`` only if
    every command of ``after`` succeeded (a skipped one's status is :data:`SKIPPED`); then
    each of ``looks`` whatever happened.  Each one's output ends with its :data:`PART_END`
    line: what needs the partner after a receive rides on the receive's own connection.  The
    script's exit status is the receive's; the others' are read from the output
    (:func:`parts_of`), in that order."""
    lines = [f"{shlex.join(receive)} || exit", "ok=1"]
    lines += [f'{shlex.join(command)}; s=$?; echo "{PART_END} $s"; [ "$s" -eq 0 ] || ok=0' for command in after]
    lines += [f'if [ "$ok" = 1 ]; then {shlex.join(command)}; echo "{PART_END} $?"; '
              f'else echo "{PART_END} {SKIPPED}"; fi' for command in gated]
    lines += [f'{shlex.join(command)}; echo "{PART_END} $?"' for command in looks]
    return ["sh", "-c", "\n".join(lines)]


#: the status :func:`receive_then` gives a gated command it did not run
SKIPPED = -1


#: the property holding an interrupted resumable receive's token
RESUME_TOKEN = "receive_resume_token"


def resume_token_of(value: str) -> str | None:
    """The token in a :data:`RESUME_TOKEN` value; None for "none" (``-``)."""
    return None if value in ("", "-") else value


def receive_argv(
    dataset: str,
    caps: Capabilities,
    *,
    resumable: bool | None = None,
    force: bool = False,
    no_mount: bool | None = None,
    props: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> list[str]:
    """``zfs receive`` into ``dataset`` (the exact destination name).

    ``resumable`` (``-s``) and ``no_mount`` (``-u``) default to "where
    supported" (for ``-s``: the CLI *and* the destination pool's
    ``extensible_dataset`` feature); asking for them explicitly where they are
    missing raises :class:`Unsupported`, as do ``props`` (``-o``) without
    ``receive -o`` -- set those after the receive instead.  ``force`` is ``-F``
    (roll back and destroy divergent snapshots): the caller decides when.
    ``exclude`` (``-x``): properties whose received value is kept but not used (the
    dataset inherits them), :class:`Unsupported` without ``receive -x`` -- then
    ``zfs inherit`` them right after the receive, which has the same effect.
    """
    validate_dataset_name(dataset)
    argv = ["zfs", "receive"]
    can_resume = caps.resumable_on(pool_of(dataset))
    for asked, supported, flag in ((resumable, can_resume, "-s"), (no_mount, caps.receive_u, "-u")):
        wanted = supported if asked is None else asked
        if wanted:
            if not supported:
                raise Unsupported(f"zfs receive {flag} is not supported for {dataset}")
            argv.append(flag)
    if force:
        argv.append("-F")
    if props:
        if not caps.receive_o:
            raise Unsupported("zfs receive -o is not supported here")
        for name, value in props.items():
            argv += ["-o", f"{validate_property_name(name)}={_validate_value(name, value)}"]
    if exclude:
        if not caps.receive_x:
            raise Unsupported("zfs receive -x is not supported here")
        for name in exclude:
            argv += ["-x", validate_property_name(name)]
    argv.append(dataset)
    return argv


def send_size_estimate_argv(send: Sequence[str], *, caps: Capabilities) -> list[str]:
    """The dry-run (``-n -v -P``) twin of a :func:`send_argv`/:func:`resume_send_argv`."""
    if list(send[:2]) != ["zfs", "send"]:
        raise ValueError(f"not a zfs send command: {send!r}")
    if not caps.send_estimate:
        raise Unsupported("zfs send -n -v -P (size estimate) is not supported here")
    return ["zfs", "send", "-n", "-v", "-P", *(arg for arg in send[2:] if arg not in ("-v", "-P"))]


def parse_send_size(text: str) -> int | None:
    """Bytes from ``zfs send -n -v -P`` output (``size\\t<n>``, else the sum of its lines)."""
    sizes = re.findall(r"^size\s+(\d+)\s*$", text, re.M)
    if sizes:
        return int(sizes[-1])
    parts = re.findall(r"^(?:full|incremental)\t.*\t(\d+)\s*$", text, re.M)
    return sum(int(n) for n in parts) if parts else None


# ---------------------------------------------------------------------------
# Resume tokens
# ---------------------------------------------------------------------------

#: the token's snapshot can still be sent from: resume
RESUME_VALID = "valid"
#: ZFS says the token's snapshot (or its incremental source) is gone: the partial receive
#: can never complete, and only then may it be discarded
RESUME_STALE = "stale"
#: the check itself failed (ZFS busy, a timeout, a corrupt token, …): keep the partial receive
RESUME_UNKNOWN = "unknown"

#: What ``zfs send -t`` prints (libzfs ``zfs_send_resume_impl``, after "cannot resume send: ")
#: when what the token names no longer exists: the snapshot it was sending is gone, or was
#: destroyed and taken again under its name, or the incremental source (``%#llx``) is gone.
_STALE_TOKEN = re.compile(
    r"'[^']+' used in the initial send no longer exists"
    r"|'[^']+' is no longer the same snapshot used in the initial send"
    r"|incremental source 0x[0-9a-f]+ no longer exists"
)


@dataclass(frozen=True)
class ResumeCheck:
    """What a resume token's check found; ``detail`` is ZFS's own line where it failed."""

    state: str  # RESUME_VALID, RESUME_STALE or RESUME_UNKNOWN
    detail: str = ""


class ResumeCheckFailed(ZfsError):
    """Whether an interrupted transfer can be resumed could not be told: nothing is done
    about it (in particular it is not discarded) until it can."""


def classify_resume_check(returncode: int | None, output: str) -> ResumeCheck:
    """The outcome of ``zfs send -n -v -t TOKEN`` (its exit status, stdout and stderr
    together) as a :class:`ResumeCheck` (pure, for tests)."""
    if returncode == 0:
        return ResumeCheck(RESUME_VALID)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    stale = next((line for line in lines if _STALE_TOKEN.search(line)), None)
    if stale is not None:
        return ResumeCheck(RESUME_STALE, stale)
    detail = lines[-1] if lines else f"exit {returncode}, no message"
    return ResumeCheck(RESUME_UNKNOWN, detail)


# ---------------------------------------------------------------------------
# The node
# ---------------------------------------------------------------------------

def parse_history(dataset: str, out: str) -> History:
    """A dataset's :class:`History` from ``zfs get -d 1 -o name,property,value`` of its
    type, guid, createtxg, creation, userrefs (and written, where it exists)."""
    rows: dict[str, dict[str, str]] = {}
    own: dict[str, str] = {}
    for line in out.splitlines():
        name, prop, value = line.split("\t")[:3]  # (a survey's listing has the source too)
        if name.startswith((dataset + "@", dataset + "#")):
            rows.setdefault(name, {})[prop] = value
        elif name == dataset:
            own[prop] = value
    snapshots: list[Snapshot] = []
    bookmarks: list[Bookmark] = []
    for name, props in rows.items():
        numbers = (int(props["guid"]), int(props["createtxg"]), int(props["creation"]))
        short = name[len(dataset) + 1 :]
        if name[len(dataset)] == "@":
            snapshots.append(Snapshot(dataset, short, *numbers, userrefs=int(props.get("userrefs", "0"))))
        else:
            bookmarks.append(Bookmark(dataset, short, *numbers))
    snapshots.sort(key=lambda s: s.createtxg)
    bookmarks.sort(key=lambda b: b.createtxg)
    written = int(own["written"]) if "written" in own else None
    return History(tuple(snapshots), tuple(bookmarks), written, own.get("type"))


def parse_own_values_and_sources(dataset: str, out: str, names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``names``' values and sources on ``dataset`` itself, from a ``zfs get -d 1 -o
    name,property,value,source`` that also lists its snapshots (a survey's listing)."""
    rows = (line.partition("\t") for line in out.splitlines())
    return parse_values_and_sources("\n".join(rest for name, _, rest in rows if name == dataset), names)


def parse_values_and_sources(out: str, names: Sequence[str]) -> dict[str, tuple[str, str]]:
    found = {}
    for line in out.splitlines():
        prop, value, source = [*line.split("\t"), "", ""][:3]
        found[prop] = (value, source)
    return {p: found.get(p, ("-", "-")) for p in names}


#: :meth:`ZfsNode.survey`'s looks in one call: the listing (``zfs`` with the arguments after the
#: first two, the history with the properties asked for), then a look at the holds of the
#: snapshots that carry any: ``zfs holds -H`` of them when the second argument is empty, or where
#: holds cannot be listed (zfs-fuse), ``zfs hold TAG`` of them, TAG the second argument, whose
#: messages (on stdout) say which already carried it (:meth:`ZfsNode._carried_before`).  Each
#: part's output ends with its :data:`PART_END` line, and a failed listing ends the script.
_SURVEY_SCRIPT = r"""
end=$1 probe=$2
shift 2
listing=$(zfs "$@"); status=$?
[ -z "$listing" ] || printf '%s\n' "$listing"
echo "$end $status"
[ "$status" -eq 0 ] || exit 0
held=$(printf '%s\n' "$listing" | awk -F '\t' '$2 == "userrefs" && $3 > 0 && index($1, "@") { print $1 }')
if [ -z "$held" ]; then echo "$end 0"
elif [ -z "$probe" ]; then printf '%s\n' "$held" | tr '\n' '\0' | xargs -0 zfs holds -H; echo "$end $?"
else printf '%s\n' "$held" | tr '\n' '\0' | xargs -0 zfs hold "$probe" 2>&1; echo "$end $?"; fi
"""
#: the survey script's second argument when the node lists holds (no tag is empty)
_LIST_HOLDS = ""
#: the line that ends each part of a several-command call's output: ``<mark> <exit status>``
PART_END = "::retadm-part-end::"


def parts_of(output: str) -> tuple[list[str], list[int]]:
    """The outputs and exit statuses of the parts of a several-command call (:data:`PART_END`),
    in order; a part whose end line is missing (it never ran, or was cut) is not among them."""
    outputs: list[str] = []
    statuses: list[int] = []
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(PART_END + " ") and line.split()[-1].lstrip("-").isdigit():
            outputs.append("\n".join(lines))
            statuses.append(int(line.split()[-1]))
            lines = []
        else:
            lines.append(line)
    return outputs, statuses


_MISSING = re.compile(r"dataset does not exist|no such pool|could not find any snapshots")
_QUOTED_SNAPSHOT = re.compile(r"'([^'@]+@[^']+)'")
_TAG_EXISTS = "tag already exists on this dataset"
_NO_SUCH_TAG = "no such tag on this dataset"
_BUSY = "dataset is busy"
_CLONED = "snapshot has dependent clones"  # (the same words on zfs-fuse and OpenZFS)


class ZfsNode:
    """ZFS on one host.  Methods map to one CLI call each unless they say otherwise."""

    def __init__(self, host: Host, *, timeout: float = DEFAULT_TIMEOUT):
        self.host = host
        self.timeout = timeout
        self._caps: Capabilities | None = None

    def __repr__(self) -> str:
        return f"<ZfsNode {self.host.name}>"

    # -- plumbing ------------------------------------------------------------

    def _run(self, argv: Sequence[str], *, check: bool = True) -> Result:
        try:
            return self.host.run(argv, timeout=self.timeout, check=check)
        except CommandFailed as exc:
            if exc.returncode is not None and _MISSING.search(exc.stderr):
                raise NoSuchDataset(exc.argv, exc.returncode, exc.stderr, exc.host) from None
            raise

    def _zfs(self, *args: str, check: bool = True) -> Result:
        return self._run(["zfs", *args], check=check)

    def _tolerant(self, args: Sequence[str], benign: str) -> None:
        """Run ``zfs <args>``; succeed if every complaint is the ``benign`` one.

        hold/release work per snapshot and report each failure on its own line,
        so an already-held (or already-released) snapshot does not hide real
        errors on the others.
        """
        result = self._zfs(*args, check=False)
        if result.returncode == 0:
            return
        errors = [line for line in result.stderr.splitlines() if line.strip() and benign not in line]
        if errors:
            cls = NoSuchDataset if any(_MISSING.search(e) for e in errors) else CommandFailed
            raise cls(result.argv, result.returncode, "\n".join(errors), self.host.name)

    # -- capabilities --------------------------------------------------------

    def capabilities(self, refresh: bool = False) -> Capabilities:
        """What this node's ZFS supports: probed once (one call), then cached.

        ``refresh`` re-probes, e.g. after a pool was created or upgraded.
        """
        if self._caps is not None and not refresh:
            return self._caps
        cache = _CapabilityCache(self.host.name)
        caps = None if refresh else cache.load()
        if caps is None:
            result = self.host.run(["sh", "-c", PROBE_SCRIPT], timeout=self.timeout, check=False)
            caps = parse_probe(result.stdout)
            cache.store(caps)
        self._caps = caps
        return caps

    # -- datasets ------------------------------------------------------------

    def list_datasets(self, types: Iterable[str] = ("filesystem", "volume")) -> list[Dataset]:
        """Every dataset of these types, pools (depth-0 filesystems) included."""
        types = tuple(types)
        if not types or any(t not in _DATASET_TYPES for t in types):
            raise ValueError(f"types must be among {_DATASET_TYPES}, got {types!r}")
        out = self._zfs("list", "-H", "-o", "name,type", "-t", ",".join(types)).stdout
        return [Dataset(*line.split("\t")) for line in out.splitlines() if line]

    def dataset_type(self, name: str) -> str | None:
        """"filesystem", "volume" or "snapshot"; None if ``name`` does not exist."""
        try:
            out = self._zfs("list", "-H", "-o", "type", _validate_target(name)).stdout
        except NoSuchDataset:
            return None
        return out.strip() or None

    def descendants(self, dataset: str) -> list[str]:
        """The filesystems and volumes under ``dataset``, at any depth (not itself, no snapshots)."""
        out = self._zfs("list", "-H", "-o", "name", "-t", "filesystem,volume", "-r",
                        validate_dataset_name(dataset)).stdout
        return [name for name in out.splitlines() if name.startswith(f"{dataset}/")]

    def exists(self, name: str) -> bool:
        """Whether a dataset (or ``dataset@snapshot``) exists."""
        return self.dataset_type(name) is not None

    def get_properties(self, name: str, properties: Sequence[str]) -> dict[str, str]:
        """Raw (``-p``) values; ``"-"`` where a property has no value."""
        names = [validate_property_name(p) for p in properties]
        if not names:
            return {}
        out = self._zfs("get", "-H", "-p", "-o", "property,value", ",".join(names), _validate_target(name)).stdout
        values: dict[str, str] = {}
        for line in out.splitlines():
            prop, _, value = line.partition("\t")
            values[prop] = value
        return values

    def value_and_source(self, name: str, prop: str) -> tuple[str, str]:
        """A property's raw value and where it comes from (``local``, ``received``, ``temporary`` …)."""
        return self.values_and_sources(name, [prop])[prop]

    def values_and_sources(self, name: str, properties: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Several properties' raw values and sources in one call; an unset user property
        is ``("-", "-")``."""
        return parse_values_and_sources(self._run(values_and_sources_argv(name, properties)).stdout, properties)

    def received_value(self, name: str, prop: str) -> str:
        """The value of ``prop`` the last receive brought (``zfs get -o received``), whether
        it is in effect or not; ``"-"`` when none was received."""
        out = self._zfs("get", "-H", "-p", "-o", "received", validate_property_name(prop),
                        _validate_target(name)).stdout
        return out.strip() or "-"

    def revert_to_received(self, name: str, prop: str) -> None:
        """``zfs inherit -S``: use the received value again (none: inherit)."""
        self._zfs("inherit", "-S", validate_property_name(prop), _validate_target(name))

    def set_property(self, name: str, prop: str, value: str) -> None:
        self._run(set_property_argv(name, prop, value))

    def inherit_property(self, name: str, prop: str) -> None:
        """Drop the local setting (a user property: remove it)."""
        self._zfs("inherit", validate_property_name(prop), _validate_target(name))

    def encryption(self, dataset: str) -> Encryption | None:
        """The dataset's encryption, encryption root and key status; None where this ZFS has no
        native encryption (zfs-fuse): nothing there is encrypted."""
        validate_dataset_name(dataset)
        if not self.capabilities().encryption:
            return None
        return encryption_of(self.get_properties(dataset, ENCRYPTION_PROPERTIES))

    def load_key(self, dataset: str, *, key_file: str | None = None, secret: str | None = None) -> None:
        """``zfs load-key`` for the encryption root ``dataset``: from ``key_file`` (an absolute
        path; ``-L file://``), or ``secret`` (a passphrase) on stdin (``-L prompt``).  The
        secret never appears on a command line."""
        validate_dataset_name(dataset)
        if (key_file is None) == (secret is None):
            raise ValueError("give exactly one of key_file and secret")
        if key_file is not None:
            if not key_file.startswith("/") or any(ch in key_file for ch in "\0\n"):
                raise InvalidName(f"invalid key file {key_file!r}: give an absolute path")
            self._zfs("load-key", "-L", f"file://{key_file}", dataset)
            return
        assert secret is not None
        # (a failure names the command and ZFS's complaint, never the input)
        self.host.run(["zfs", "load-key", "-L", "prompt", dataset], input=secret + "\n", timeout=self.timeout)

    def mount(self, dataset: str) -> None:
        """Mount a filesystem (already mounted: nothing to do)."""
        self._tolerant(["mount", validate_dataset_name(dataset)], "already mounted")

    def remount(self, dataset: str) -> None:
        """Unmount and mount again, so that the mount takes the dataset's current settings."""
        self._zfs("unmount", validate_dataset_name(dataset))
        self._zfs("mount", dataset)

    def resume_token(self, dataset: str) -> str | None:
        """The token of an interrupted resumable receive into ``dataset``, if any."""
        validate_dataset_name(dataset)
        if not self.capabilities().resume_tokens:
            return None
        try:
            return resume_token_of(self.get_properties(dataset, [RESUME_TOKEN]).get(RESUME_TOKEN, "-"))
        except NoSuchDataset:
            return None

    def check_resume_token(self, token: str) -> ResumeCheck:
        """Whether this (sending) node can still send from ``token`` (``zfs send -n -v -t``):
        :data:`RESUME_VALID`, :data:`RESUME_STALE` (ZFS says the snapshot the interrupted
        transfer was sending is gone) or :data:`RESUME_UNKNOWN` (anything else went wrong)."""
        argv = resume_send_argv(token, caps=self.capabilities())
        try:
            result = self._run([*argv[:2], "-n", "-v", *argv[2:]], check=False)
        except HostError as exc:  # timed out, or the host could not run it
            return ResumeCheck(RESUME_UNKNOWN, str(exc))
        return classify_resume_check(result.returncode, result.stdout + "\n" + result.stderr)

    def rollback(self, dataset: str, snapshot: str) -> None:
        """``zfs rollback -r``: back to ``dataset@snapshot``, destroying later snapshots."""
        self._zfs("rollback", "-r", snapshot_full_name(dataset, snapshot))

    def rename(self, dataset: str, new_name: str) -> None:
        """Rename a dataset (not a snapshot) within its pool."""
        old, new = validate_dataset_name(dataset), validate_dataset_name(new_name)
        if pool_of(old) != pool_of(new):
            raise InvalidName(f"{new} is not in the pool of {old}")
        if self._zfs("rename", old, new, check=False).returncode == 0:
            return
        # zfs-fuse cannot rename a mounted (or mountable) filesystem ("dataset is busy"):
        # take its mountpoint away for the rename, then give the renamed one its own back
        value, origin = self.value_and_source(old, "mountpoint")
        self._zfs("set", "mountpoint=none", old)
        try:
            self._zfs("rename", old, new)
        except CommandFailed:
            self._restore_mountpoint(old, value, origin)
            raise
        self._restore_mountpoint(new, value, origin)

    def _restore_mountpoint(self, dataset: str, value: str, origin: str) -> None:
        if set_locally(origin):
            self._zfs("set", f"mountpoint={value}", dataset)
        else:
            self._zfs("inherit", "mountpoint", dataset)

    def abort_resume(self, dataset: str) -> None:
        """Discard a partial resumable receive into ``dataset`` (``zfs receive -A``)."""
        self._zfs("receive", "-A", validate_dataset_name(dataset))

    # -- pools ---------------------------------------------------------------

    def pool_health(self, pool: str) -> str | None:
        """"ONLINE", "DEGRADED", ...; None when there is no such pool."""
        try:
            out = self._run(["zpool", "list", "-H", "-o", "health", validate_pool_name(pool)]).stdout
        except NoSuchDataset:
            return None
        return out.strip()

    def _looks(self, looks: Sequence[Sequence[str]], *, then: str = "",
               args: Sequence[str] = ()) -> tuple[Callable[[int], str | None], str]:
        """Run the commands ``looks`` and then the shell text ``then`` in one call (``args``:
        its positional parameters).  Returns what gives each look's output by its index (None
        where what it looked at is missing; a look that failed otherwise raises
        :class:`CommandFailed` when asked for, so a look whose answer is not needed may fail)
        and ``then``'s output."""
        parts = [f'{shlex.join(look)} 2>&1; echo "{PART_END} $?"' for look in looks]
        if then:
            parts.append(f'{{ {then}; }}; echo "{PART_END} 0"')
        result = self._run(["sh", "-c", "\n".join(parts), "sh", *args], check=False)
        outputs, statuses = parts_of(result.stdout)
        if len(statuses) != len(parts):
            raise CommandFailed(looks[min(len(statuses), len(looks) - 1)], result.returncode,
                                result.stderr or "its output was cut short", self.host.name)

        def found(index: int) -> str | None:
            if statuses[index] == 0:
                return outputs[index].strip()
            if _MISSING.search(outputs[index]):
                return None
            raise CommandFailed(looks[index], statuses[index], outputs[index], self.host.name)

        return found, outputs[-1] if then else ""

    def candidate(self, dataset: str, properties: Sequence[str]) -> Candidate:
        """:class:`Candidate` ``dataset``: its type, the datasets under it, ``properties`` and
        its encryption, in one call (the capabilities, which say whether there is encryption
        to ask for, are cached)."""
        validate_dataset_name(dataset)
        caps = self.capabilities()
        asked = [*(validate_property_name(p) for p in properties), *(ENCRYPTION_PROPERTIES if caps.encryption else ())]
        looks = [["zfs", "list", "-H", "-o", "name,type", "-t", "filesystem,volume", "-r", dataset]]
        if asked:
            looks.append(["zfs", "get", "-H", "-p", "-o", "property,value,source", ",".join(asked), dataset])
        found, _ = self._looks(looks)
        listing = dict(line.split("\t", 1) for line in (found(0) or "").splitlines() if "\t" in line)
        kind = listing.get(dataset)
        values = parse_values_and_sources((found(1) or "") if kind and asked else "", asked)
        encryption = None
        if kind and caps.encryption:
            encryption = encryption_of({prop: values[prop][0] for prop in ENCRYPTION_PROPERTIES})
        under = tuple(name for name in listing if name.startswith(f"{dataset}/"))
        return Candidate(dataset, kind, under, {prop: values[prop] for prop in properties}, encryption, caps)

    def landing(self, dataset: str) -> Landing:
        """:class:`Landing` of a new replica ``dataset`` (``pool/…/name``): the pool's health,
        whether the dataset and its parent exist, the parent's encryption and the node's
        capabilities, all in one call.  The capabilities are probed afresh, or, where they
        were probed before, as far as they may have changed since (:data:`REPROBE_SCRIPT`);
        and cached.  A look that fails other than by a missing pool or dataset raises
        :class:`CommandFailed`."""
        parent = validate_dataset_name(dataset).rpartition("/")[0]
        if not parent:
            raise InvalidName(f"{dataset} is a pool, not a dataset in one")
        looks = [["zpool", "list", "-H", "-o", "health", validate_pool_name(pool_of(dataset))],
                 ["zfs", "list", "-H", "-o", "type", dataset],
                 ["zfs", "list", "-H", "-o", "type", parent],
                 ["zfs", "get", "-H", "-p", "-o", "property,value", ",".join(ENCRYPTION_PROPERTIES), parent]]
        cache = _CapabilityCache(self.host.name)
        before = self._caps or cache.load()
        probe, version = (PROBE_SCRIPT, "") if before is None else (REPROBE_SCRIPT, before.version)
        found, probed = self._looks(looks, then=probe, args=[version])
        caps = parse_probe(probed) if before is None else parse_reprobe(probed, before)
        cache.store(caps)
        self._caps = caps
        health, exists, parent_exists = found(0), found(1) is not None, found(2) is not None
        encryption = None
        if parent_exists and caps.encryption:
            encryption = encryption_of(dict(line.split("\t", 1) for line in (found(3) or "").splitlines()
                                            if "\t" in line))
        return Landing(dataset, health, exists, parent_exists, encryption, caps)

    def pools(self) -> list[str]:
        """The names of the node's imported pools."""
        return self._run(["zpool", "list", "-H", "-o", "name"]).stdout.split()

    def set_here(self, properties: Sequence[str]) -> dict[str, dict[str, str]]:
        """Every dataset that has one of ``properties`` set on itself (not inherited, not
        received), with those values: one ``zfs get -s local`` over the whole node."""
        names = [validate_property_name(p) for p in properties]
        out = self._zfs("get", "-H", "-p", "-s", "local", "-o", "name,property,value", ",".join(names)).stdout
        found: dict[str, dict[str, str]] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and "@" not in parts[0]:
                found.setdefault(parts[0], {})[parts[1]] = parts[2]
        return found

    def sync_pool(self, pool: str) -> None:
        """``zpool sync``: commit what was written to ``pool`` so far.  Space properties such as
        ``written`` count committed data only, which the pool commits every few seconds."""
        self._run(["zpool", "sync", validate_pool_name(pool)])

    # -- snapshots and bookmarks ---------------------------------------------

    def history(self, dataset: str) -> History:
        """The dataset's own snapshots and bookmarks (not its children's), oldest first.

        One ``zfs get -d 1`` call: it lists the dataset, its snapshots, its
        direct children and (OpenZFS) its bookmarks, with exact numbers on
        every implementation; names are filtered here because zfs-fuse's
        ``zfs get`` has no ``-t``.  The same call gives the dataset's type, and
        where the ``written`` property exists, how much was written since its
        newest snapshot.
        """
        return parse_history(validate_dataset_name(dataset), self._zfs(*self._history_args(dataset)).stdout)

    def _history_args(self, dataset: str, properties: Sequence[str] = ()) -> list[str]:
        """The listing of :meth:`history`; with ``properties``, theirs too, and every value's
        source (:func:`parse_own_values_and_sources`)."""
        wanted = ["type", "guid", "createtxg", "creation", "userrefs"]
        if self.capabilities().written:
            wanted.append("written")
        columns = "name,property,value" + (",source" if properties else "")
        return ["get", "-H", "-p", "-d", "1", "-o", columns, ",".join([*wanted, *properties]), dataset]

    def survey(self, dataset: str, properties: Sequence[str], tag: str) -> Survey | None:
        """What replication needs to know of one dataset, in one call: its history,
        ``properties``' values and sources (both in one listing), and which of its held
        snapshots carry ``tag``.  None when the dataset does not exist.  A snapshot destroyed
        between the listing and the look at its holds raises :class:`NoSuchDataset`: look again.

        Where holds cannot be listed (zfs-fuse) the look is :meth:`holds`' probe, done in the
        same call; releasing the holds it added takes one more, only where some snapshot held
        by others did not carry ``tag``."""
        validate_dataset_name(dataset)
        names = [validate_property_name(p) for p in properties]
        tag = validate_tag(tag)
        listing = ["zfs", *self._history_args(dataset, names)]
        lists = self.capabilities().holds_list
        look = ["zfs", "holds", "-H", "..."] if lists else ["zfs", "hold", tag, "..."]
        result = self._run(["sh", "-c", _SURVEY_SCRIPT, "sh", PART_END, _LIST_HOLDS if lists else tag,
                            *listing[1:]], check=False)
        outputs, statuses = parts_of(result.stdout)
        # a probe fails where the tag was there already: its messages tell, not its status
        judged = statuses if lists else statuses[:1]
        failed = next((i for i, status in enumerate(judged) if status != 0), None)
        if failed is not None or len(statuses) != 2:
            which = failed if failed is not None else len(statuses)
            error_argv = (listing, look)[min(which, 1)]
            missing = _MISSING.search(result.stderr)
            if which == 0 and missing:
                return None
            cls = NoSuchDataset if missing else CommandFailed
            raise cls(error_argv, statuses[which] if which < len(statuses) else result.returncode,
                      result.stderr, self.host.name)
        history = parse_history(dataset, outputs[0])
        holds: dict[str, set[str]] = {}
        if lists:
            for line in outputs[1].splitlines():
                name, _, rest = line.partition("\t")
                if rest.rpartition("\t")[0] == tag:
                    holds.setdefault(name, set()).add(tag)
        else:
            held = [snapshot.full for snapshot in history.snapshots if snapshot.userrefs > 0]
            holds = {name: {tag} for name in self._carried_before(tag, held, statuses[1], outputs[1])}
        return Survey(history, parse_own_values_and_sources(dataset, outputs[0], names), holds)

    def snapshots(self, dataset: str) -> list[Snapshot]:
        """The dataset's own snapshots in creation order, with guid and createtxg."""
        return list(self.history(dataset).snapshots)

    def bookmarks(self, dataset: str) -> list[Bookmark]:
        """The dataset's bookmarks in creation order (empty where unsupported)."""
        return list(self.history(dataset).bookmarks)

    def snapshot(self, dataset: str, name: str) -> str:
        """Create ``dataset@name``; return the full name."""
        full = snapshot_full_name(dataset, name)
        self._zfs("snapshot", full)
        return full

    def destroy_snapshot(self, dataset: str, name: str) -> None:
        """Destroy exactly one snapshot (:func:`destroy_snapshot_argv`)."""
        try:
            self._run(destroy_snapshot_argv(dataset, name))
        except NoSuchDataset:
            raise
        except CommandFailed as exc:
            if exc.returncode is not None and _CLONED in exc.stderr:
                raise SnapshotCloned(exc.argv, exc.returncode, exc.stderr, exc.host) from None
            if exc.returncode is not None and _BUSY in exc.stderr:
                raise DatasetBusy(exc.argv, exc.returncode, exc.stderr, exc.host) from None
            raise

    def bookmark(self, dataset: str, snapshot: str, name: str) -> str:
        """Create ``dataset#name`` from ``dataset@snapshot``; return the full name."""
        if not self.capabilities().bookmarks_on(pool_of(dataset)):
            raise Unsupported(f"{self.host.name}: bookmarks are not supported for {dataset}")
        full = bookmark_full_name(dataset, name)
        self._zfs("bookmark", snapshot_full_name(dataset, snapshot), full)
        return full

    def destroy_bookmark(self, dataset: str, name: str) -> None:
        """Destroy exactly one bookmark."""
        self._run(destroy_bookmark_argv(dataset, name))

    # -- holds ---------------------------------------------------------------

    def holds(self, snapshots: Sequence[str], tags: Collection[str] | None = None) -> dict[str, set[str]]:
        """Hold tags per snapshot (full names), for all snapshots in one call.

        With ``tags``, only those tags are reported.  Where ``zfs holds`` does
        not work (zfs-fuse) ``tags`` is required: each tag is then detected by
        holding it on all the snapshots at once -- the snapshots that already
        carry it say so -- and releasing it again where it was new.  That costs
        two calls per tag and can do no harm: a hold only protects a snapshot.
        At worst a concurrent destroy fails in between, or a run killed between
        the two calls leaves the tag in place (and it is then reported as held,
        so the owner's next release removes it).
        """
        names = list(dict.fromkeys(snapshots))
        for name in names:
            split_snapshot(name)
        wanted = None if tags is None else {validate_tag(t) for t in tags}
        result: dict[str, set[str]] = {name: set() for name in names}
        if not names:
            return result
        if self.capabilities().holds_list:
            out = self._zfs("holds", "-H", *names).stdout
            for line in out.splitlines():
                name, _, rest = line.partition("\t")
                tag = rest.rpartition("\t")[0]
                if name in result and (wanted is None or tag in wanted):
                    result[name].add(tag)
            return result
        if wanted is None:
            raise Unsupported(f"{self.host.name}: this ZFS cannot list holds; ask for specific tags")
        for tag in sorted(wanted):
            for name in self._snapshots_holding(tag, names):
                result[name].add(tag)
        return result

    def _snapshots_holding(self, tag: str, names: list[str]) -> set[str]:
        attempt = self._zfs("hold", tag, *names, check=False)
        return self._carried_before(tag, names, attempt.returncode, attempt.stderr)

    def _carried_before(self, tag: str, names: Sequence[str], returncode: int | None, messages: str) -> set[str]:
        """After ``zfs hold tag names...`` said ``messages``: which of ``names`` carried ``tag``
        already.  The holds it added are released again (one call); a snapshot it could not
        hold raises, :class:`NoSuchDataset` when it is gone."""
        argv = ["zfs", "hold", tag, *names]
        held_before: set[str] = set()
        failed: list[str] = []
        failed_names: set[str] = set()
        for line in filter(str.strip, messages.splitlines()):
            match = _QUOTED_SNAPSHOT.search(line)
            if match is None:
                # We cannot tell which holds are new: leave them.  An extra
                # hold is harmless; releasing someone else's would not be.
                raise CommandFailed(argv, returncode, messages, self.host.name)
            if _TAG_EXISTS in line:
                held_before.add(match.group(1))
            else:
                failed.append(line)
                failed_names.add(match.group(1))
        new = [name for name in names if name not in held_before and name not in failed_names]
        if new:
            self._zfs("release", tag, *new)
        if failed:
            errors = "\n".join(failed)
            cls = NoSuchDataset if _MISSING.search(errors) else CommandFailed
            raise cls(argv, returncode, errors, self.host.name)
        return held_before

    def hold(self, tag: str, snapshots: Sequence[str]) -> None:
        """Put hold ``tag`` on each snapshot (one call); already held is fine."""
        self._hold_or_release("hold", tag, snapshots, _TAG_EXISTS)

    def release(self, tag: str, snapshots: Sequence[str]) -> None:
        """Release hold ``tag`` from each snapshot (one call); not held is fine."""
        self._hold_or_release("release", tag, snapshots, _NO_SUCH_TAG)

    def run_each(self, commands: Sequence[Sequence[str]]) -> list[bool]:
        """Several commands in one call, each whatever the ones before did: which of them
        succeeded (one that did not run to its end counts as failed).  For steps whose failure
        the caller handles by doing them again on their own, which reports why."""
        script = "\n".join(f'{shlex.join(command)}; echo "{PART_END} $?"' for command in commands)
        _, statuses = parts_of(self._run(["sh", "-c", script], check=False).stdout)
        return [index < len(statuses) and statuses[index] == 0 for index in range(len(commands))]

    def _hold_or_release(self, verb: str, tag: str, snapshots: Sequence[str], benign: str) -> None:
        if snapshots:
            self._tolerant([verb, *hold_argv(tag, snapshots)[2:]], benign)

    # -- sizes ---------------------------------------------------------------

    def estimate_send_size(self, send: Sequence[str]) -> int | None:
        """Bytes the given ``zfs send`` would produce; None where it cannot tell."""
        if not self.capabilities().send_estimate:
            return None
        result = self._run(send_size_estimate_argv(send, caps=self.capabilities()))
        return parse_send_size(result.stdout + "\n" + result.stderr)
