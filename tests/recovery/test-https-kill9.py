#!/usr/bin/python3
# kill -9 under HTTP load: 10 rounds of sluiced (durability batch, 4
# partitions) with 4 concurrent keep-alive HTTP clients posting device
# telemetry; after a random delay sluiced is killed with SIGKILL. After each
# restart, every message that got a 2xx, in this round or any before, must
# be readable through the HTTPS read API, once, in its device's partition,
# and each client's messages must keep their send order per partition.
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

ROUNDS = int(os.environ.get("SLUICE_KILL9_ROUNDS", "10"))
CLIENTS = 4
DEVICES_PER_CLIENT = 4
PARTITIONS = 4
READ_LIMIT = 1000

seed = int(os.environ.get("SLUICE_TEST_SEED", str(int(time.time()))))
rng = random.Random(seed)
tap = st.Tap(planned=ROUNDS + 1)
tap.diag("seed %d (set SLUICE_TEST_SEED to repeat)" % seed)

key = st.new_key()
work = st.tempdir()
data_dir = os.path.join(work, "data")
config = st.https_hub_config(
    data_dir, {"loader": {"primary-key": key, "rights": ["DeviceConnect", "Send", "Listen"]}},
    {"events": {"partitions": PARTITIONS, "durability": "batch"}},
    https={"tls-listen": None, "read-limit": READ_LIMIT})
hub = st.Hub(config, workdir=work, data_dir=data_dir)
token = st.sas_token("localhost", key, skn="loader")

acked = []           # (round, client, seq, device, body), in ack order per client
acked_lock = threading.Lock()


def client(round_no, client_no, address, stats):
    """Post telemetry one request at a time on a keep-alive connection until
    the hub dies; remember every 2xx."""
    conn = http.client.HTTPConnection(address[0], address[1], timeout=30)
    seq = 0
    try:
        while True:
            device = "r%d-c%d-d%d" % (round_no, client_no, seq % DEVICES_PER_CLIENT)
            body = "r%d-c%d-s%d" % (round_no, client_no, seq)
            conn.request("POST", "/devices/%s/messages/events" % device, body=body,
                         headers={"Authorization": token})
            resp = conn.getresponse()
            resp.read()
            if 200 <= resp.status < 300:
                with acked_lock:
                    acked.append((round_no, client_no, seq, device, body))
                stats["acked"] += 1
            else:
                stats["errors"].append("client %d seq %d: HTTP %d" % (client_no, seq,
                                                                       resp.status))
                return
            seq += 1
    except (OSError, http.client.HTTPException):
        pass                               # killed: the request in flight is unknown
    finally:
        conn.close()


def read_all(address):
    """Every record of every partition through the read API:
    {body: [(partition, offset, key)]}."""
    found = {}
    for p in range(PARTITIONS):
        status, _, data = st.http_request(address, "GET", "/events",
                                          headers={"Authorization": token})
        if status != 200:
            raise st.HubError("GET /events: HTTP %d %r" % (status, data[:200]))
        bounds = json.loads(data)["partitions"][p]
        offset = bounds["first"]
        while offset < bounds["next"]:
            status, headers, data = st.http_request(
                address, "GET", "/events/partitions/%d/messages?from=%d&limit=%d"
                % (p, offset, READ_LIMIT), headers={"Authorization": token})
            if status != 200:
                raise st.HubError("read of partition %d at %d: HTTP %d %r"
                                  % (p, offset, status, data[:200]))
            records = json.loads(data)
            if not records:
                raise st.HubError("partition %d: nothing at %d before next %d"
                                  % (p, offset, bounds["next"]))
            for r in records:
                found.setdefault(r["body"], []).append((p, r["offset"], r["key"]))
            offset = records[-1]["offset"] + 1
    return found


def verify(address):
    problems = []
    found = read_all(address)
    for body, places in found.items():
        if len(places) > 1:
            problems.append("%s stored %d times: %r" % (body, len(places), places))
    last = {}
    with acked_lock:
        snapshot = list(acked)
    for round_no, client_no, seq, device, body in snapshot:
        places = found.get(body)
        if not places:
            problems.append("acknowledged %s is missing" % body)
            continue
        p, offset, k = places[0]
        if k != device or p != st.partition_for_key(device, PARTITIONS):
            problems.append("%s in partition %d with key %r, want %s in %d"
                            % (body, p, k, device, st.partition_for_key(device, PARTITIONS)))
        order_key = (p, round_no, client_no)
        if offset <= last.get(order_key, -1):
            problems.append("%s stored before an earlier message of its client" % body)
        last[order_key] = offset
    return problems, sum(len(v) for v in found.values())


try:
    for round_no in range(1, ROUNDS + 1):
        try:
            hub.start()
        except st.HubError as e:
            tap.bail_out("round %d: sluiced did not start: %s" % (round_no, e))
        address = hub.address("https", "plain")
        # What the rounds before acknowledged survived their kill.
        try:
            problems, stored = verify(address)
        except (st.HubError, OSError, ValueError) as e:
            problems, stored = ["reading back: %s" % e], 0
        stats = {"acked": 0, "errors": []}
        threads = [threading.Thread(target=client, args=(round_no, i, address, stats))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))     # the random moment of the crash
        hub.kill9()
        for t in threads:
            t.join(60)
        problems = stats["errors"] + problems
        tap.ok(not problems and stats["acked"] > 0,
               "round %d: %d acknowledged; the %d of earlier rounds read back intact (%d stored)"
               % (round_no, stats["acked"], len(acked) - stats["acked"], stored),
               "\n".join(problems[:20]) + "\n" + hub.log_tail(10))

    # A clean last start: everything is readable and sluiced stops with 0.
    hub.start()
    problems, stored = verify(hub.address("https", "plain"))
    code = hub.stop()
    tap.ok(code == 0 and not problems,
           "after %d kills: all %d acknowledged messages read back over HTTPS in order, "
           "clean stop" % (ROUNDS, len(acked)),
           "exit %r; %s" % (code, "\n".join(problems[:20])))
except st.HubError as e:
    tap.bail_out(str(e))
tap.done()
