"""Child process of test_crash: delivers forever, printing each acknowledged delivery.

A line is printed only after `Store.deliver` returned, i.e. after the group
commit made the message durable. The parent kills this process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mss.store.api import Store
from mss.store.mailboxes import Target


def make(token: str) -> bytes:
    return (
        f"From: jean@pro.mssante.test\r\nTo: marie@pro.mssante.test\r\n"
        f"Subject: crash {token}\r\nMessage-ID: <{token}@crash.test>\r\n\r\n" + "x" * 4000 + "\r\n"
    ).encode()


async def main(url: str, key_file: Path, box: int, writers: int) -> None:
    store = Store.open(url, key_file, migrate=False)
    store.start()

    async def writer(w: int) -> None:
        i = 0
        while True:
            token = f"w{w}-{i}"
            await store.deliver(make(token), [Target(box)])
            sys.stdout.write(f"<{token}@crash.test>\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
