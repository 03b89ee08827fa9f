"""The catalogue of the shell's persistent options and what setting each one does.

An option's value is applied to the system first and stored only when that
worked, so the store never claims a state the node is not in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import services
from .store import Store, StoreError

ON_OFF = ("on", "off")
#: how long a transfer may move no byte before the run stops it (see :func:`stall_timeout`)
STALL_TIMEOUT = "retadm.stall.timeout"
#: how many runs ``retadm inc`` without a dataset starts at once: in all, and towards one partner
#: (see :func:`parallel_runs`)
PARALLEL = "retadm.parallel"
PARALLEL_PER_PARTNER = "retadm.parallel.partner"


class OptionError(Exception):
    """Unknown option or invalid value: one line for the user (a usage error)."""

    status = 2


class OptionNotApplied(OptionError):
    """The value is valid but the system refused it; nothing was stored."""

    status = 1


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ON_OFF
    apply: Callable[[str], None] | None = None
    #: for a value that is not one of ``choices`` (then empty): the normalised value, or
    #: :class:`OptionError`'s reason ("expected …")
    parse: Callable[[str], str] | None = None
    #: the value the system is in now, in the option's own terms (for an option that sets a
    #: system state, which may have been changed by other means): see :func:`in_effect`
    actual: Callable[[], str | None] | None = None

    def validate(self, value: str) -> str:
        normalised = value.strip().lower()
        if self.parse is not None:
            try:
                return self.parse(normalised)
            except ValueError as exc:
                raise OptionError(f"invalid value {value!r} for {self.name}: {exc}") from None
        if normalised not in self.choices:
            raise OptionError(f"invalid value {value!r} for {self.name}: expected {' or '.join(self.choices)}")
        return normalised


#: the longest stall limit accepted: a day
_MAX_STALL = 86400


#: the most runs at once either limit accepts
_MAX_PARALLEL = 64


def _count(value: str) -> str:
    if not value.isdigit() or not 1 <= int(value) <= _MAX_PARALLEL:
        raise ValueError(f"expected a whole number from 1 to {_MAX_PARALLEL}")
    return str(int(value))


def _seconds(value: str) -> str:
    if not value.isdigit() or int(value) > _MAX_STALL:
        raise ValueError(f"expected whole seconds from 0 (no limit) to {_MAX_STALL}")
    return str(int(value))


def _root_login_in_effect() -> str | None:
    policy = services.root_login_policy()
    return None if policy is None else services.ROOT_LOGIN_VALUE.get(policy, policy)


CATALOGUE: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "ssh.allow.root", "off",
            "root may log in over SSH: on (a password too, while keys are exchanged), keys (a key "
            "only: once passwordless SSH works), off; retadm needs on or keys",
            choices=tuple(services.ROOT_LOGIN), apply=services.set_root_login, actual=_root_login_in_effect,
        ),
        Option(
            "cron.enable", "off",
            "run the cron daemon (schedules 'retadm inc')",
            apply=lambda v: services.set_cron(v == "on"),
            actual=lambda: "on" if services.service_manager().is_running(services.CRON) else "off",
        ),
        Option(
            "autosync.enable", "off",
            "push configuration changes (targets, mappings, shares, users) to the replication partners",
        ),
        Option(
            STALL_TIMEOUT, "600",
            "seconds a replication transfer may move no data before it is stopped (0: never)",
            choices=(), parse=_seconds,
        ),
        Option(
            PARALLEL, "4",
            "replication runs 'retadm inc' without a dataset starts at once (a dataset's tasks "
            "still run one after the other)",
            choices=(), parse=_count,
        ),
        Option(
            PARALLEL_PER_PARTNER, "2",
            "of those, how many towards the same partner",
            choices=(), parse=_count,
        ),
    )
}


def lookup(name: str) -> Option:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise OptionError(f"unknown option {name!r}; known options: {', '.join(sorted(CATALOGUE))}") from None


def get(name: str, store: Store | None = None) -> str:
    option = lookup(name)
    value = (store or Store()).get_option(name)
    return option.default if value is None else value


def in_effect(name: str, value: str) -> str | None:
    """What the system is in for option ``name`` when it is not ``value`` (the stored one):
    cron stopped by hand, sshd's policy edited …; None when it agrees or cannot tell."""
    option = lookup(name)
    if option.actual is None:
        return None
    try:
        actual = option.actual()
    except (services.ServiceError, OSError):
        return None
    return actual if actual not in (None, value) else None


def is_on(name: str, store: Store | None = None) -> bool:
    return get(name, store) == "on"


def all_values(store: Store | None = None) -> dict[str, str]:
    stored = (store or Store()).all_options()
    return {name: stored.get(name, option.default) for name, option in sorted(CATALOGUE.items())}


def set_value(name: str, value: str, store: Store | None = None) -> str:
    """Validate, apply to the system, then persist. Returns the stored value."""
    option = lookup(name)
    value = option.validate(value)
    if option.apply is not None:
        try:
            option.apply(value)
        except services.ServiceError as exc:
            raise OptionNotApplied(f"{name} not changed: {exc}") from exc
    (store or Store()).set_option(name, value)
    return value


def _number(name: str, store: Store | None) -> int:
    """A numeric option's value; a store that cannot be read gives the default (a run must not
    fail, or hold its task's lock for ever, because of it)."""
    try:
        return int(get(name, store))
    except (StoreError, OSError, ValueError):
        return int(CATALOGUE[name].default)


def stall_timeout(store: Store | None = None) -> float | None:
    """Seconds a replication transfer may move no data before it is stopped; None: never."""
    value = _number(STALL_TIMEOUT, store)
    return float(value) if value > 0 else None


def parallel_runs(store: Store | None = None) -> tuple[int, int]:
    """(runs at once in all, runs at once towards one partner) for ``retadm inc`` without a
    dataset."""
    return _number(PARALLEL, store), _number(PARALLEL_PER_PARTNER, store)
