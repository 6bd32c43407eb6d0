#!/usr/bin/python3
# Torn and corrupt data, through a real sluiced and its HTTPS read API, for
# both storage backends:
#  - file: a torn tail of the newest segment (a batch never acknowledged,
#    cut mid-write) is truncated at start-up and logged;
#  - file and lmdb: a flipped byte inside an older, acknowledged batch is
#    found by its CRC: readers at that offset get a clear error, the log has
#    a line naming it, /metrics counts it, and every batch before and after
#    it stays readable;
#  - lmdb: damage to LMDB's own pages is found by the verification pass at
#    open and reported (sluiced exits 1 with a message naming the file)
#    instead of crashing sluiced.
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import glob
import json
import os
import random
import re
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

N = 30          # messages (one batch each)
DAMAGED = 10    # the offset whose batch gets the flipped byte
DEVICE = "dev-1"

tap = st.Tap()
key = st.new_key()
token = st.sas_token("localhost", key, skn="owner")


def make_hub(backend):
    work = st.tempdir()
    data_dir = os.path.join(work, "data")
    config = st.https_hub_config(
        data_dir, {"owner": {"primary-key": key,
                             "rights": ["ServiceConnect", "DeviceConnect", "Send", "Listen"]}},
        {"events": {"partitions": 1, "durability": "batch"}}, https={"tls-listen": None})
    if backend != "file":
        storage = {"lmdb": "plugin = lmdb\nmap-size = 4MiB"}[backend]
        config = config.replace("[storage]\nplugin = file", "[storage]\n" + storage)
    return st.Hub(config, workdir=work, data_dir=data_dir)


def body_of(i):
    return "message-%04d-%s" % (i, "x" * 40)


def post_all(hub):
    address = hub.address("https", "plain")
    for i in range(N):
        status, _, data = st.http_request(address, "POST",
                                          "/devices/%s/messages/events" % DEVICE,
                                          body=body_of(i), headers={"Authorization": token})
        if not 200 <= status < 300:
            raise st.HubError("POST %d: HTTP %d %r" % (i, status, data[:200]))


def read(hub, offset, limit=1000):
    """(status, [(offset, body)] or the error body)."""
    status, _, data = st.http_request(
        hub.address("https", "plain"), "GET",
        "/events/partitions/0/messages?from=%d&limit=%d" % (offset, limit),
        headers={"Authorization": token})
    if status != 200:
        return status, data.decode(errors="replace")
    return status, [(r["offset"], r["body"]) for r in json.loads(data)]


def bounds(hub):
    status, _, data = st.http_request(hub.address("https", "plain"), "GET", "/events",
                                      headers={"Authorization": token})
    p = json.loads(data)["partitions"][0]
    return p["first"], p["next"]


def metric(hub, name):
    status, _, data = st.http_request(hub.address("https", "plain"), "GET", "/metrics")
    m = re.search(r"^%s (\d+)" % re.escape(name), data.decode(errors="replace"), re.M)
    return int(m.group(1)) if m else None


def log_text(hub):
    with open(hub.log_path, errors="replace") as f:
        return f.read()


def segment_batches(path):
    """[(position, length, base offset)] of the batches in a segment file."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        out.append((pos, length + 12, base))
        pos += length + 12
    return out, data


def flip_in_file(path, needle):
    """Flip one byte of every copy of `needle` in the file; how many."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        count = 0
        at = data.find(needle)
        while at >= 0:
            data[at + len(needle) // 2] ^= 0x40
            count += 1
            at = data.find(needle, at + 1)
        f.seek(0)
        f.write(data)
    return count


def check_corrupt(backend, hub):
    """Reads around the damaged batch, the log line and the metric."""
    status, before = read(hub, 0)
    tap.ok(status == 200 and [o for o, _ in before] == list(range(DAMAGED))
           and all(b == body_of(o) for o, b in before),
           "%s: a read from 0 returns the %d batches before the damaged one" % (backend, DAMAGED),
           "HTTP %d %r" % (status, before))
    status, answer = read(hub, DAMAGED)
    tap.ok(status == 500 and "CorruptData" in answer and "offset %d" % DAMAGED in answer,
           "%s: a read at the damaged offset is a clear error (500 CorruptData naming it)"
           % backend, "HTTP %d %r" % (status, answer))
    status, after = read(hub, DAMAGED + 1)
    tap.ok(status == 200 and [o for o, _ in after] == list(range(DAMAGED + 1, N))
           and all(b == body_of(o) for o, b in after),
           "%s: every batch after the damaged one reads back intact" % backend,
           "HTTP %d %r" % (status, after))
    log = log_text(hub)
    tap.ok(re.search(r"stream 'events' partition 0: the batch at offset %d is corrupt" % DAMAGED,
                     log),
           "%s: the log names the corrupt batch" % backend, hub.log_tail(10))
    count = metric(hub, "sluice_storage_corrupt_batches_total")
    tap.ok(count is not None and count >= 1,
           "%s: /metrics counts it (sluice_storage_corrupt_batches_total %r)" % (backend, count))


def file_backend():
    hub = make_hub("file")
    hub.start()
    post_all(hub)
    tap.eq(hub.stop(), 0, "file: %d messages acknowledged, clean stop" % N)
    seg = sorted(glob.glob(os.path.join(hub.data_dir, "logs", "events", "0", "*.log")))[-1]

    # A torn tail: the next batch (offset N, never acknowledged) cut half way.
    batches, data = segment_batches(seg)
    pos, length, base = batches[-1]
    torn = bytearray(data[pos:pos + length])
    torn[0:8] = struct.pack(">q", N)
    with open(seg, "ab") as f:
        f.write(torn[:length // 2])
    hub.start()
    first, nxt = bounds(hub)
    tap.ok((first, nxt) == (0, N), "file: the torn batch is gone (bounds %d, %d)" % (first, nxt))
    tap.ok(os.path.getsize(seg) == len(data), "file: the segment is truncated to its whole batches")
    tap.ok(re.search(r"warning.*partition 0: dropping %d bytes of a torn" % (length // 2),
                     log_text(hub), re.I) is not None,
           "file: the truncation is logged", hub.log_tail(10))
    status, records = read(hub, 0)
    tap.ok(status == 200 and len(records) == N, "file: all %d acknowledged messages read back"
           % N, "HTTP %d %r" % (status, records))
    tap.eq(hub.stop(), 0, "file: clean stop")

    # A flipped byte inside the batch at DAMAGED (an older, acknowledged one).
    n = flip_in_file(seg, body_of(DAMAGED).encode())
    tap.eq(n, 1, "file: one copy of message %d damaged" % DAMAGED)
    hub.start()
    check_corrupt("file", hub)
    tap.eq(hub.stop(), 0, "file: clean stop with a damaged batch")


def lmdb_backend():
    hub = make_hub("lmdb")
    hub.start()
    post_all(hub)
    tap.eq(hub.stop(), 0, "lmdb: %d messages acknowledged, clean stop" % N)
    data_file = os.path.join(hub.data_dir, "lmdb", "data.mdb")

    # A flipped byte inside an older batch (every copy: LMDB keeps old page
    # versions on its free list).
    n = flip_in_file(data_file, body_of(DAMAGED).encode())
    tap.ok(n >= 1, "lmdb: message %d damaged (%d copies)" % (DAMAGED, n))
    hub.start()
    check_corrupt("lmdb", hub)
    tap.eq(hub.stop(), 0, "lmdb: clean stop with a damaged batch")

    # LMDB's own pages: everything after the two meta pages is noise.
    with open(data_file, "r+b") as f:
        size = f.seek(0, 2)
        page = 4096
        rng = random.Random(7)
        f.seek(2 * page)
        f.write(bytes(rng.getrandbits(8) for _ in range(size - 2 * page)))
    try:
        hub.start()
        tap.ok(False, "lmdb: sluiced refuses damaged pages", "it started")
        hub.kill9()
    except st.HubError:
        code = hub.proc.returncode
        log = log_text(hub)
        tap.ok(code == 1, "lmdb: sluiced exits 1 on damaged pages, no crash (exit %r)" % code,
               hub.log_tail(10))
        tap.ok("data.mdb is damaged" in log,
               "lmdb: the verification pass reports the damaged file", hub.log_tail(10))


try:
    file_backend()
    lmdb_backend()
except (st.HubError, OSError, ValueError) as e:
    tap.bail_out(str(e))
tap.done()
