"""``restore``: apply a partner's synced configuration, and replicated datasets' properties,
to this node's services after a failover (the guide's section 9).

- :mod:`.planner` — pure: what is wanted (:class:`~.planner.Desired`, from the synced
  configuration and the local datasets' ``ovios:*`` properties) and what the services have
  now (observed states) → a :class:`~.planner.Plan`: actions, each with its one-line
  description, refusals and notes.  No I/O.
- one backend per service, each observing its state and applying its actions:
  :mod:`.lio` (iSCSI targets through ``targetcli``, state read from configfs),
  :mod:`.samba` (shares in a file of ours included from ``smb.conf``, accounts through
  ``pdbedit``), :mod:`.nfs` (``/etc/exports.d/ovios.exports``, ``exportfs -ra``),
  :mod:`.users` (Unix accounts).
- :mod:`.system` — gathers the inputs (synced configuration, ``zfs get``, the backends'
  observations) and carries a plan out.
"""
