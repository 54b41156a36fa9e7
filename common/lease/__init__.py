"""The catalog's single writer, decided by consensus (design §7 rules 0 and 7).

- `table`: the lease as a replicated state machine (holder, epoch, expiry).
- `raft`: that table kept in a PySyncObj Raft group of the voters.
- `keeper`: a catalog's loop that acquires and renews the lease.
- `fence`: the newest epoch a node has seen; anything older is refused (409).
- `reads`: read leases: the holder's grants to copies, and a copy's own lease.
- `clock`: wall and monotonic time behind one seam, so tests can drive it.
"""
