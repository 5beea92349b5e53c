"""A local SMTP sink for the demo: accepts every mail on 127.0.0.1:8025 and saves it to var/demo/sent/ as .eml.

Nothing leaves the machine; the receipts the demo sends can be read there. Stops on SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo/sent")


class Save:
    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        OUT.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(list(OUT.iterdir())) + 1:03d}.eml"
        (OUT / name).write_bytes(envelope.original_content or envelope.content)
        return "250 OK (demo sink)"


controller = Controller(Save(), hostname="127.0.0.1", port=8025)
controller.start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
try:
    stop.wait()
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
