#!/usr/bin/python3
# The recorded client streams of $SLUICE_VECTORS/kafka (kcat, confluent-kafka,
# kafka-python and kafkajs 2.2, which is not installed here) replayed byte
# for byte against a real sluiced: every request is answered, in order, with
# its correlation id; the recorded Produce batches (every codec, kafkajs'
# gzip one included) are taken; ApiVersions v3 (flexible) is answered in
# full; the connection stays open to the end. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()

VECTORS = os.path.join(st.vectors(), "kafka")
if not os.path.isdir(VECTORS):
    tap.bail_out("no Kafka vectors at %s: set SLUICE_VECTORS" % VECTORS)
if not os.path.exists(os.path.join(st.builddir(), "plugins", "transport-kafka",
                                   "transport-kafka.la")):
    tap.bail_out("plugins/transport-kafka/transport-kafka.la is not built")

owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key, "rights": ["Send", "Listen", "Manage"]}}
# The recordings' topics, with the mock's 3 partitions each.
streams = {name: {"partitions": 3, "durability": "batch"}
           for name in ("vectors", "kp-vectors", "kjs-vectors")}
work = st.tempdir()
data_dir = os.path.join(work, "data")
kafka_section = ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0",
                                     "anonymous-policy": "owner"})
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=[kafka_section]),
             workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path(
                 [os.path.join(st.builddir(), "plugins", "transport-kafka")])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
addr = hub.address("kafka", "plain")


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed by the server")
        out += chunk
    return out


def produce_errors(body):
    """Error codes of a Produce v3..v7 answer."""
    errors, pos = [], 0
    n_topics = struct.unpack(">i", body[pos:pos + 4])[0]
    pos += 4
    for _ in range(n_topics):
        name_len = struct.unpack(">h", body[pos:pos + 2])[0]
        pos += 2 + name_len
        n_parts = struct.unpack(">i", body[pos:pos + 4])[0]
        pos += 4
        for _ in range(n_parts):
            errors.append(struct.unpack(">h", body[pos + 4:pos + 6])[0])
            pos += 4 + 2 + 8 + 8 + 8  # partition, error, base offset, append time, log start
    return errors


for scenario in sorted(os.listdir(VECTORS)):
    sdir = os.path.join(VECTORS, scenario)
    for conn in sorted(d for d in os.listdir(sdir) if d.startswith("conn-")):
        with open(os.path.join(sdir, conn, "c2s.bin"), "rb") as f:
            c2s = f.read()
        with open(os.path.join(sdir, conn, "index.json")) as f:
            requests = json.load(f)["requests"]
        sock = socket.create_connection(addr, timeout=15)
        answered, problems, produce = 0, [], []
        try:
            for req in requests:
                frame = c2s[req["offset"]:req["offset"] + 4 + req["size"]]
                sock.sendall(frame)
                size = struct.unpack(">i", read_exact(sock, 4))[0]
                body = read_exact(sock, size)
                corr = struct.unpack(">i", body[:4])[0]
                if corr != req["correlation_id"]:
                    problems.append(("correlation", req["api_name"], corr))
                    continue
                answered += 1
                # Response header v1 (a tag byte) for flexible versions except
                # ApiVersions.
                rest = body[4:] if req["header_version"] < 2 or req["api_key"] == 18 \
                    else body[5:]
                if req["api_key"] == 18:
                    if struct.unpack(">h", rest[:2])[0] != 0:
                        problems.append(("ApiVersions error", req["api_version"], rest[:2]))
                elif req["api_key"] == 0:
                    produce += produce_errors(rest)
        except (OSError, ConnectionError, struct.error) as e:
            problems.append(("connection", answered, str(e)))
        sock.close()
        name = "%s/%s" % (scenario, conn)
        tap.ok(answered == len(requests) and not problems,
               "%s: all %d recorded requests answered in order" % (name, len(requests)),
               problems)
        if produce:
            # The idempotent producer's recorded id was the mock's, not one we
            # handed out: refusing it is right.
            if scenario == "confluent-idempotent-producer":
                tap.ok(all(e == 59 for e in produce),
                       "%s: a producer id this hub never gave out: UNKNOWN_PRODUCER_ID" % name,
                       produce)
            else:
                tap.ok(all(e == 0 for e in produce),
                       "%s: its %d recorded batches are taken" % (name, len(produce)), produce)

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly (exit 0)")
tap.done()
