"""The OviOS configuration a failover node needs: iSCSI targets and LUN mappings, SMB
shares, NFS exports, users.

Other OviOS verbs manage it; this package defines where it lives and how it travels:

- :mod:`.model` — the configuration as values, and its versioned JSON format;
- :mod:`.files` — ``/etc/ovios/config.json`` (this node's) and
  ``/etc/ovios/synced/<node>.json`` (a partner's, pushed by autosync), written atomically;
- :mod:`.properties` — the per-dataset part kept in ZFS user properties, which
  ``retadm init … --properties yes`` carries with the data.
- :mod:`.autosync` — with ``autosync.enable on``, pushing this node's configuration to
  every replication partner (after shell commands, before ``retadm inc``);
- :mod:`.receive` — the partner's side of a push: checked, then stored atomically.
"""
