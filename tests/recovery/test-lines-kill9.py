#!/usr/bin/python3
# kill -9 under load: 10 rounds of sluiced (durability batch, 4 partitions)
# with 4 concurrent lines clients sending keyed lines; after a random delay
# sluiced is killed with SIGKILL, and every line it answered `ok P O` for, in
# this round or any before, must be stored at exactly that partition and
# offset, in send order per partition. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

ROUNDS = int(os.environ.get("SLUICE_KILL9_ROUNDS", "10"))
CLIENTS = 4
PARTITIONS = 4
WINDOW = 64          # lines in flight per client

seed = int(os.environ.get("SLUICE_TEST_SEED", str(int(time.time()))))
rng = random.Random(seed)
tap = st.Tap(planned=ROUNDS + 1)
tap.diag("seed %d (set SLUICE_TEST_SEED to repeat)" % seed)

key = st.new_key()
work = st.tempdir()
data_dir = os.path.join(work, "data")
config = st.lines_hub_config(
    data_dir, {"loader": {"primary-key": key, "rights": ["Send"]}},
    {"events": {"partitions": PARTITIONS, "durability": "batch"}})
hub = st.Hub(config, workdir=work, data_dir=data_dir)
token = st.sas_token("localhost", key, skn="loader")

acked = {}           # (partition, offset) -> (round, client, seq, key)
acked_lock = threading.Lock()


def client(round_no, client_no, address, stop, stats):
    """Send keyed lines with a bounded window until the hub dies; record acks."""
    try:
        c = st.LinesClient(address, timeout=30)
        if c.auth(token) != "ok":
            stats["errors"].append("client %d: token refused" % client_no)
            return
    except OSError as e:
        stats["errors"].append("client %d: %s" % (client_no, e))
        return
    pending = []     # (seq, key), in send order
    seq = 0
    try:
        while True:
            while len(pending) < WINDOW and not stop.is_set():
                k = "r%d-c%d-k%d" % (round_no, client_no, seq % 16)
                body = "r%d-c%d-s%d" % (round_no, client_no, seq)
                c.send(json.dumps({"key": k, "body": body}))
                pending.append((seq, k))
                seq += 1
            if not pending:
                break
            answer = c.recv_line(timeout=30)
            if answer is None:
                break                      # killed: the rest stays unanswered
            s, k = pending.pop(0)
            pos = st.parse_ok(answer)
            if pos is None:
                stats["errors"].append("client %d seq %d: %r" % (client_no, s, answer))
                continue
            stats["first_ack"].set()
            with acked_lock:
                if pos in acked:
                    stats["errors"].append("offset %r answered twice" % (pos,))
                acked[pos] = (round_no, client_no, s, k)
                stats["acked"] += 1
    except (OSError, socket.timeout) as e:
        if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
            stats["errors"].append("client %d: %r" % (client_no, e))
    finally:
        c.close()


def verify():
    """Every acknowledged line at its answered position, in order."""
    problems = []
    records = hub.dump("events")
    by_pos = {}
    for r in records:
        pos = (r["partition"], r["offset"])
        if pos in by_pos:
            problems.append("offset %r stored twice" % (pos,))
        by_pos[pos] = r
    last = {}
    for p in range(PARTITIONS):
        offsets = sorted(o for (q, o) in by_pos if q == p)
        if offsets and offsets != list(range(offsets[0], offsets[0] + len(offsets))):
            problems.append("partition %d has holes" % p)
    for pos in sorted(acked):
        round_no, client_no, s, k = acked[pos]
        r = by_pos.get(pos)
        want = "r%d-c%d-s%d" % (round_no, client_no, s)
        if r is None:
            problems.append("acknowledged %s missing at %r" % (want, pos))
            continue
        if r["body"] != want or r["key"] != k:
            problems.append("at %r: want %s/%s, found %s/%s" % (pos, want, k, r["body"], r["key"]))
        if pos[0] != st.partition_for_key(k, PARTITIONS):
            problems.append("%s answered on partition %d, not murmur2's" % (want, pos[0]))
        # Per partition, one client's lines of a round keep their send order.
        order_key = (pos[0], round_no, client_no)
        if s <= last.get(order_key, -1):
            problems.append("%s stored after a later line of its client" % want)
        last[order_key] = s
    return problems, len(records)


try:
    for round_no in range(1, ROUNDS + 1):
        try:
            hub.start()
        except st.HubError as e:
            tap.bail_out("round %d: sluiced did not start: %s" % (round_no, e))
        address = hub.address("lines")
        stop = threading.Event()
        stats = {"acked": 0, "errors": [], "first_ack": threading.Event()}
        threads = [threading.Thread(target=client, args=(round_no, i, address, stop, stats))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        # The load is on once the first answer arrived (a slow sanitizer build
        # may take a while to get there); then crash at a random moment.
        if not stats["first_ack"].wait(60):
            stats["errors"].append("no line answered within 60 s")
        time.sleep(rng.uniform(0.2, 1.5))
        hub.kill9()
        for t in threads:
            t.join(60)
        try:
            problems, stored = verify()
        except st.HubError as e:
            problems, stored = [str(e)], 0
        problems = stats["errors"] + problems
        tap.ok(not problems and stats["acked"] > 0,
               "round %d: %d acknowledged, all present" % (round_no, stats["acked"]),
               "\n".join(problems[:20]) + "\n%d stored, %d acknowledged in total"
               % (stored, len(acked)) + "\n" + hub.log_tail(10))

    # A clean last start: everything is still there and sluiced stops with 0.
    hub.start()
    code = hub.stop()
    problems, stored = verify()
    tap.ok(code == 0 and not problems,
           "after %d kills: %d acknowledged lines intact, clean stop" % (ROUNDS, len(acked)),
           "exit %r; %s" % (code, "\n".join(problems[:20])))
except st.HubError as e:
    tap.bail_out(str(e))
tap.done()
