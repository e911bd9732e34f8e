"""The data-sync extension: observable JSON records kept in sync over WAMP
(retained snapshots and versioned patch events on record topics)."""
