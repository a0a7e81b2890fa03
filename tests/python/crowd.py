"""200 lab clients at once, with Python's asyncio, against a socklab device.

    python3 crowd.py HOST PORT CLIENTS SLOTS BACKLOG

Opens CLIENTS connections at the same moment and sorts them: greeted (HELLO),
waiting (connected, no HELLO: the backlog) and refused (ConnectionRefusedError).
Then, as greeted clients QUIT one at a time, the waiting ones must get their
HELLO in the order WHO gave them (`wait <position> <addr>`), one per departure.
At the end every client quits and a fresh client's NETSTAT must show every lab
socket listening but its own. Prints one JSON object with what it saw; exits 1
with a message on the first thing that is wrong.
"""

import asyncio
import json
import sys
import time

HELLO_WAIT = 3.0  # seconds a connected client waits for HELLO before it counts as waiting
STEP_WAIT = 10.0  # seconds to wait for any single answer


class Client:
    def __init__(self, index):
        self.index = index
        self.reader = None
        self.writer = None
        self.hello = None
        self.refused = None
        self.local = None

    async def open(self, host, port):
        try:
            self.reader, self.writer = await asyncio.open_connection(host, port)
        except ConnectionRefusedError as e:
            self.refused = str(e)
            return
        sockname = self.writer.get_extra_info("sockname")
        self.local = f"{sockname[0]}:{sockname[1]}"
        try:
            self.hello = await asyncio.wait_for(self.readline(), HELLO_WAIT)
        except asyncio.TimeoutError:
            self.hello = None

    async def readline(self):
        line = await self.reader.readline()
        if not line:
            raise EOFError(f"client {self.index}: the device closed the connection")
        return line.decode().rstrip("\r\n")

    async def ask(self, command, until_end=False):
        self.writer.write((command + "\n").encode())
        await self.writer.drain()
        lines = []
        while True:
            line = await asyncio.wait_for(self.readline(), STEP_WAIT)
            if not until_end:
                return line
            if line == "END":
                return lines
            lines.append(line)

    async def quit(self):
        bye = await self.ask("QUIT")
        if bye != "BYE":
            fail(f"client {self.index}: QUIT answered {bye!r}")
        rest = await asyncio.wait_for(self.reader.read(), STEP_WAIT)
        if rest:
            fail(f"client {self.index}: bytes after BYE: {rest!r}")
        self.writer.close()
        await self.writer.wait_closed()


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


async def main(host, port, count, slots, backlog):
    clients = [Client(i) for i in range(count)]
    started = time.monotonic()
    await asyncio.gather(*(c.open(host, port) for c in clients))
    opened = time.monotonic() - started
    greeted = [c for c in clients if c.hello is not None]
    waiting = [c for c in clients if c.reader is not None and c.hello is None]
    refused = [c for c in clients if c.refused is not None]
    if not all(c.hello.startswith("HELLO ") for c in greeted):
        fail(f"odd greetings: {[c.hello for c in greeted if not c.hello.startswith('HELLO ')]}")
    if (len(greeted), len(waiting), len(refused)) != (slots, backlog, count - slots - backlog):
        fail(
            f"{len(greeted)} greeted, {len(waiting)} waiting, {len(refused)} refused; "
            f"expected {slots}, {backlog}, {count - slots - backlog}"
        )

    # WHO gives the backlog's order; map it onto our waiting clients.
    who = await greeted[0].ask("WHO", until_end=True)
    queue = {}
    for line in who:
        words = line.split()
        if words[0] == "wait":
            queue[int(words[1])] = words[2]
    by_addr = {c.local: c for c in waiting}
    if sorted(queue.values()) != sorted(by_addr):
        fail(f"WHO's backlog {queue} is not our waiting clients {sorted(by_addr)}")
    order = [by_addr[queue[p]] for p in sorted(queue)]

    # Each departure lets exactly the next waiting client in, first come first served.
    pending = {c: asyncio.ensure_future(c.readline()) for c in order}
    served_in_order = 0
    for expected in order:
        leaving = greeted.pop()
        await leaving.quit()
        done, _ = await asyncio.wait(
            pending.values(), timeout=STEP_WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            fail(f"no waiting client got HELLO within {STEP_WAIT} s of a departure")
        first = next(c for c, t in pending.items() if t in done)
        if first is not expected:
            fail(f"client {first.index} was served before client {expected.index} (WHO order)")
        hello = pending.pop(first).result()
        if not hello.startswith("HELLO "):
            fail(f"client {first.index} got {hello!r} instead of HELLO")
        first.hello = hello
        greeted.insert(0, first)
        served_in_order += 1

    # Everyone leaves; a newcomer sees every lab socket listening but its own.
    await asyncio.gather(*(c.quit() for c in greeted))
    observer = Client(count)
    await observer.open(host, port)
    if observer.hello is None:
        fail("the newcomer was not greeted after everyone left")
    deadline = time.monotonic() + STEP_WAIT
    while True:
        rows = await observer.ask("NETSTAT", until_end=True)
        lab = [r.split() for r in rows if r.split()[1].endswith(f":{port}")]
        listening = [r for r in lab if r[3] == "LISTEN"]
        # Sockets finishing a close in TIME-WAIT are apart from the slots.
        busy = [r for r in lab if r[3] not in ("LISTEN", "TIME-WAIT")]
        if len(listening) == slots + backlog - 1 and [r[2] for r in busy] == [observer.local]:
            break
        if time.monotonic() > deadline:
            fail(f"lab sockets still busy after everyone left: {busy}")
        await asyncio.sleep(0.05)
    info = dict(l.split("=", 1) for l in await observer.ask("INFO", until_end=True))
    if info.get("lab_in_use") != "1":
        fail(f"lab_in_use={info.get('lab_in_use')} with one client left")
    await observer.quit()
    print(
        json.dumps(
            {
                "clients": count,
                "greeted": slots,
                "waiting": backlog,
                "refused": len(refused),
                "served_in_order": served_in_order,
                "lab_sockets_listening": len(listening),
                "open_seconds": round(opened, 3),
            }
        )
    )


if __name__ == "__main__":
    host, port, count, slots, backlog = sys.argv[1], *map(int, sys.argv[2:6])
    asyncio.run(main(host, port, count, slots, backlog))
