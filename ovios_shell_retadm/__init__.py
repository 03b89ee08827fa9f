"""retadm, restore, edit-cron and options for ovios-shell."""
