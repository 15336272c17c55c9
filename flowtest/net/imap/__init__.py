"""IMAP: the watcher that waits for probes, and moving them to Trash.

- :mod:`.wire`: replies read into values (pure);
- :mod:`.protocol`: where aioimaplib needs help;
- :mod:`.slots`: the per-mailbox connection cap across processes;
- :mod:`.session`: one authenticated connection and its commands;
- :mod:`.watcher`: one long-lived watcher per mailbox, and :mod:`.arrivals`, what it found;
- :mod:`.trash`: moving by UID.
"""

from flowtest.net.imap.arrivals import Arrival
from flowtest.net.imap.protocol import hide_credentials
from flowtest.net.imap.session import IDLE_RENEW_S, THROTTLE_SIGNS, ImapSession, refuse_starttls
from flowtest.net.imap.slots import SlotsBusy, UnsafeSlotDir
from flowtest.net.imap.trash import move, open_session, trash
from flowtest.net.imap.watcher import Watcher, WatcherDied
from flowtest.net.imap.wire import Folders, parse_list

# Before any connection: aioimaplib's debug log must never carry a LOGIN line.
hide_credentials()

__all__ = [
    "IDLE_RENEW_S", "THROTTLE_SIGNS", "Arrival", "Folders", "ImapSession", "SlotsBusy",
    "UnsafeSlotDir", "Watcher", "WatcherDied", "hide_credentials", "move", "open_session",
    "parse_list", "refuse_starttls", "trash",
]
