"""The scheduler's lease lock; the implementation lives in `feedback.leases` (source pulls use
the same table to keep two pulls of one source from running at once)."""

from feedback.leases import acquire_or_renew, release

__all__ = ["acquire_or_renew", "release"]
