"""`flowtest serve`: the legs on a schedule, in one process that stays up.

- :mod:`~flowtest.serve.schedule`: when each job runs next (with jitter);
- :mod:`~flowtest.serve.mailboxes`: the warm IMAP watchers;
- :mod:`~flowtest.serve.states`: ok / warning / failing / unknown per leg and alias;
- :mod:`~flowtest.serve.store`: SQLite memory (runs, results, states, sends);
- :mod:`~flowtest.serve.metrics`: the Prometheus registry;
- :mod:`~flowtest.serve.service`: all of it together;
- :mod:`~flowtest.serve.app` and :mod:`~flowtest.serve.page`: HTTP and the status page.
"""

from flowtest.serve.service import Notifier, Service

__all__ = ["Notifier", "Service"]
