"""The accounts' quotas at RCPT (store/quotas.py): a local recipient already full.

As Postfix's quota-status policy does before Dovecot: the account that holds as many
messages or bytes as it may is refused at RCPT with `452 4.2.2` (RFC 3463 §3.3,
"mailbox full": temporary, the sending server retries, the sender hears of it if it
lasts), so the other recipients of the same message are still delivered. SMTP has one
reply to DATA for every recipient, so a message accepted at RCPT is delivered whatever
its size: an account may go past its storage by the messages accepted before it was
full. A sender over quota still sends: on the submission door the Sent copy is the
client's APPEND, which IMAP refuses over quota (NO [OVERQUOTA]); the patient space keeps
its Sent copy of a message that has already left (nothing sent is lost).
"""

from __future__ import annotations

from mss.errors import Rejection
from mss.store.api import Store
from mss.store.quotas import Quota, owner_quota

MAILBOX_FULL = Rejection(
    452,
    "4.2.2",
    "Boîte aux lettres du destinataire pleine : quota atteint (mailbox full, quota exceeded)",
)


async def refuse_if_full(store: Store, default: Quota, inbox: int) -> None:
    """RCPT: `MAILBOX_FULL` for the account of this INBOX when it is already full (its
    own limits, else `default`: the settings')."""
    quota, used = await store.db.read_fast(lambda conn: owner_quota(conn, inbox, default))
    if quota.full(used):
        raise MAILBOX_FULL
