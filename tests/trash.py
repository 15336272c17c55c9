"""Moving planted messages back to Trash, by flowtest's own means: what a
test does after leaving a probe behind on purpose."""

from __future__ import annotations

from flowtest.config import Config
from flowtest.net.imap import move, open_session


async def move_to_trash(config: Config, prefix: str) -> None:
    """Every message of Gmail's INBOX whose token starts with ``prefix``."""
    async with open_session(config.gmail, tls=config.tls, timeouts=config.timeouts,
                            app_password=True) as session:
        folders = await session.folders()
        assert folders.trash is not None
        await session.select(folders.inbox)
        await move(session, sorted(await session.tokens_in_folder(prefix)), folders.trash)
