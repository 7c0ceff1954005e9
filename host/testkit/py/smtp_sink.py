"""A mail server for tests: aiosmtpd (the reference asyncio SMTP server) on 127.0.0.1:PORT.

Each message it accepts is parsed with Python's own email package and printed to stdout as one
JSON line (sender, recipients, decoded subject and body, Message-ID, parser defects); the first
FAIL_FIRST messages are refused with a transient 451 so a test sees the sender retry.

    python3 smtp_sink.py PORT FAIL_FIRST
"""

import email
import email.policy
import json
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, fail_first):
        self.fail_first = fail_first

    async def handle_DATA(self, server, session, envelope):
        if self.fail_first > 0:
            self.fail_first -= 1
            print(json.dumps({"refused": True}), flush=True)
            return "451 4.3.0 Try again later"
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "subject": str(msg["subject"]),
                    "message_id": str(msg["message-id"]),
                    "event": str(msg["x-mission-control-event"]),
                    "date": str(msg["date"]),
                    "content_type": msg.get_content_type(),
                    "body": msg.get_content(),
                    "defects": [str(d) for d in msg.defects],
                }
            ),
            flush=True,
        )
        return "250 2.0.0 OK"


def main():
    port, fail_first = int(sys.argv[1]), int(sys.argv[2])
    controller = Controller(Handler(fail_first), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    # Until the test kills it (or closes its stdin).
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    threading.current_thread().name = "smtp-sink"
    main()
