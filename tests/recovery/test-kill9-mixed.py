#!/usr/bin/python3
# kill -9 under mixed load, for both storage backends (storage-file and
# storage-lmdb), SLUICE_KILL9_ROUNDS rounds each (default 20): every round
# starts sluiced, checks that everything acknowledged before is there, then
# runs at once an HTTPS client posting device telemetry, a python3-paho-mqtt
# device publishing QoS 1 telemetry, and a python3-confluent-kafka idempotent
# producer (acks=all) on a stream, all with durability `batch`, and kills
# sluiced with SIGKILL at a random moment. The Kafka producer lives across
# the rounds (the Kafka listener keeps its port), so it retries what the kill
# left unacknowledged against the restarted hub: retries must not be stored
# twice. Checked after every restart:
#   - every acknowledged HTTPS and MQTT message is stored (at least once), in
#     its device's partition, in its client's send order;
#   - every acknowledged Kafka message is at the partition and offset its
#     delivery report gave, and no Kafka message is stored twice;
#   - the consumer-group offsets committed in earlier rounds are where they
#     were committed.
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import http.client
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

ROUNDS = int(os.environ.get("SLUICE_KILL9_ROUNDS", "20"))
BACKENDS = os.environ.get("SLUICE_KILL9_BACKENDS", "file,lmdb").split(",")
PARTITIONS = 4
READ_LIMIT = 1000
PER_ROUND = 1000000      # messages a client may send per round: the kill comes first
HOST = "localhost"

seed = int(os.environ.get("SLUICE_TEST_SEED", str(int(time.time()))))
rng = random.Random(seed)
tap = st.Tap()
tap.diag("seed %d (set SLUICE_TEST_SEED to repeat)" % seed)

try:
    import paho.mqtt.client as paho
except ImportError:
    tap.bail_out("paho-mqtt not found: install the Debian package python3-paho-mqtt")
try:
    import confluent_kafka as ck
except ImportError:
    tap.bail_out("confluent_kafka not found: install the Debian package python3-confluent-kafka")
for plugin in ("storage-lmdb", "transport-kafka", "transport-mqtt", "transport-https"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))


def free_port():
    """A port free right now on 127.0.0.1 that the kernel never hands out by
    itself: the Kafka listener must keep its port across restarts for the
    producer to come back to it, and while sluiced is down a port from the
    ephemeral range could be taken by another test's listener (port 0) or
    client. So: below the ephemeral range, free when checked."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        # Not from the seeded rng: copies of this test started in the same
        # second would all pick the same port.
        port = random.SystemRandom().randrange(max(1024, low - 12000), low)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    tap.bail_out("no free port below the ephemeral range (%d)" % low)


class Run:
    """One backend's rounds."""

    def __init__(self, backend):
        self.backend = backend
        self.key = st.new_key()
        self.work = st.tempdir()
        self.data_dir = os.path.join(self.work, "data")
        self.kport = free_port()
        policies = {"owner": {"primary-key": self.key,
                              "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                         "DeviceConnect", "Send", "Listen", "Manage"]}}
        streams = {"events": {"partitions": PARTITIONS, "durability": "batch"},
                   "orders": {"partitions": PARTITIONS, "durability": "batch"}}
        extra = [("transport.mqtt", {"plugin": "mqtt", "listen": "127.0.0.1:0"}),
                 ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:%d" % self.kport,
                                      "anonymous-policy": "owner"})]
        config = st.https_hub_config(self.data_dir, policies, streams, extra=extra,
                                     https={"tls-listen": None, "read-limit": READ_LIMIT})
        config = config.replace("[storage]\nplugin = file\n",
                                "[storage]\nplugin = %s\n" % backend)
        self.hub = st.Hub(config, workdir=self.work, data_dir=self.data_dir)
        self.token = st.sas_token(HOST, self.key, skn="owner")
        self.lock = threading.Lock()
        self.acked = []          # (kind, round, client, seq, device, body) in ack order
        self.kafka_acked = {}    # body -> (partition, offset)
        self.kafka_sent = set()
        self.groups = {}         # partition -> committed offset
        self.device_keys = {}
        self.producer = None
        self.kseq = 0

    # --- clients ---------------------------------------------------------

    def https_client(self, round_no, address, stop):
        conn = http.client.HTTPConnection(address[0], address[1], timeout=30)
        try:
            for seq in range(PER_ROUND):
                if stop.is_set():
                    return
                device = "h%d-d%d" % (round_no, seq % 4)
                body = "https-r%d-s%d" % (round_no, seq)
                conn.request("POST", "/devices/%s/messages/events" % device, body=body,
                             headers={"Authorization": self.token})
                resp = conn.getresponse()
                resp.read()
                if not 200 <= resp.status < 300:
                    return
                with self.lock:
                    self.acked.append(("https", round_no, 0, seq, device, body))
                time.sleep(0.002)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def mqtt_client(self, round_no, address, stop):
        device = "mq-dev"
        acks = {}
        cond = threading.Condition()
        c = paho.Client(client_id=device, protocol=paho.MQTTv311)
        c.username_pw_set("%s/%s/?api-version=2021-04-12" % (HOST, device),
                          st.sas_token("%s/devices/%s" % (HOST, device),
                                       self.device_keys[device]))

        def on_publish(client, userdata, mid):
            with cond:
                acks[mid] = True
                cond.notify_all()

        c.on_publish = on_publish
        try:
            c.connect(address[0], address[1], keepalive=30)
        except OSError:
            return
        c.loop_start()
        try:
            for seq in range(PER_ROUND):
                if stop.is_set():
                    return
                body = "mqtt-r%d-s%d" % (round_no, seq)
                info = c.publish("devices/%s/messages/events/" % device, body, qos=1)
                deadline = time.monotonic() + 10
                with cond:
                    # One at a time: the ack order is the send order. The
                    # kill sets `stop`; nothing notifies then, so poll it.
                    while info.mid not in acks and not stop.is_set():
                        if time.monotonic() > deadline:
                            return
                        cond.wait(0.05)
                if info.mid not in acks:
                    return
                with self.lock:
                    self.acked.append(("mqtt", round_no, 1, seq, device, body))
        finally:
            c.loop_stop()
            try:
                c.disconnect()
            except Exception:
                pass

    def kafka_delivered(self, err, msg):
        if err is None:
            with self.lock:
                self.kafka_acked[msg.value().decode()] = (msg.partition(), msg.offset())

    def kafka_client(self, round_no, stop):
        for seq in range(PER_ROUND * 2):
            if stop.is_set():
                return
            body = "kafka-%d" % self.kseq
            self.kseq += 1
            self.kafka_sent.add(body)
            try:
                self.producer.produce("orders", key=b"k%d" % (self.kseq % 7), value=body.encode(),
                                      on_delivery=self.kafka_delivered)
            except BufferError:
                pass
            self.producer.poll(0)
            time.sleep(0.001)

    # --- checks ----------------------------------------------------------

    def read_stream(self, address, stream):
        """{body: [(partition, offset, key)]} of every record."""
        found = {}
        status, _, data = st.http_request(address, "GET", "/" + stream,
                                          headers={"Authorization": self.token})
        if status != 200:
            raise st.HubError("GET /%s: HTTP %d %r" % (stream, status, data[:200]))
        for bounds in json.loads(data)["partitions"]:
            p, offset = bounds["id"], bounds["first"]
            while offset < bounds["next"]:
                status, _, data = st.http_request(
                    address, "GET", "/%s/partitions/%d/messages?from=%d&limit=%d"
                    % (stream, p, offset, READ_LIMIT), headers={"Authorization": self.token})
                if status != 200:
                    raise st.HubError("read %s/%d at %d: HTTP %d %r"
                                      % (stream, p, offset, status, data[:200]))
                records = json.loads(data)
                if not records:
                    raise st.HubError("%s/%d: nothing at %d before next %d"
                                      % (stream, p, offset, bounds["next"]))
                for r in records:
                    found.setdefault(r["body"], []).append((p, r["offset"], r["key"]))
                offset = records[-1]["offset"] + 1
        return found

    def verify(self, address):
        problems = []
        events = self.read_stream(address, "events")
        orders = self.read_stream(address, "orders")
        with self.lock:
            acked = list(self.acked)
            kafka_acked = dict(self.kafka_acked)
        last = {}
        for kind, round_no, client, seq, device, body in acked:
            places = events.get(body)
            if not places:
                problems.append("acknowledged %s message %s is missing" % (kind, body))
                continue
            p, offset, k = places[0]
            if k != device or p != st.partition_for_key(device, PARTITIONS):
                problems.append("%s in partition %d with key %r" % (body, p, k))
            order_key = (kind, round_no, client, p)
            if offset <= last.get(order_key, -1):
                problems.append("%s stored before an earlier message of its client" % body)
            last[order_key] = offset
        for body, places in orders.items():
            if len(places) > 1:
                problems.append("Kafka message %s stored %d times: %r"
                                % (body, len(places), places))
            if body not in self.kafka_sent:
                problems.append("Kafka record %r was never sent" % body)
        for body, (p, offset) in kafka_acked.items():
            places = orders.get(body)
            if not places:
                problems.append("acknowledged Kafka message %s is missing" % body)
            elif (places[0][0], places[0][1]) != (p, offset):
                problems.append("Kafka message %s at %r, its delivery report said %d/%d"
                                % (body, places[0][:2], p, offset))
        status, _, data = st.http_request(address, "GET", "/events/consumergroups/recovery/offsets",
                                          headers={"Authorization": self.token})
        committed = {o["partition"]: o["offset"] for o in json.loads(data)} if status == 200 else {}
        for p, offset in self.groups.items():
            if committed.get(p) != offset:
                problems.append("group 'recovery' partition %d at %r, committed %d"
                                % (p, committed.get(p), offset))
        return problems, sum(len(v) for v in events.values()), sum(len(v) for v in orders.values())

    def commit_group(self, address, round_no):
        p = round_no % PARTITIONS
        offset = round_no * 3
        status, _, _ = st.http_request(address, "POST", "/events/consumergroups/recovery/offsets",
                                       body=json.dumps([{"partition": p, "offset": offset}]),
                                       headers={"Authorization": self.token,
                                                "Content-Type": "application/json"})
        if status in (200, 204):
            self.groups[p] = offset

    # --- rounds ----------------------------------------------------------

    def run(self):
        self.producer = ck.Producer({"bootstrap.servers": "127.0.0.1:%d" % self.kport,
                                     "enable.idempotence": True, "acks": "all",
                                     "linger.ms": 5, "message.timeout.ms": 600000,
                                     "reconnect.backoff.max.ms": 200,
                                     "topic.metadata.refresh.interval.ms": 1000,
                                     "log_level": 0})
        for round_no in range(1, ROUNDS + 1):
            try:
                self.hub.start()
            except st.HubError as e:
                tap.bail_out("%s round %d: sluiced did not start: %s"
                             % (self.backend, round_no, e))
            address = self.hub.address("https", "plain")
            if round_no == 1:
                status, _, data = st.http_request(
                    address, "PUT", "/devices/mq-dev", body=json.dumps({"deviceId": "mq-dev"}),
                    headers={"Authorization": self.token, "Content-Type": "application/json"})
                if status != 200:
                    tap.bail_out("PUT /devices/mq-dev: %d %r" % (status, data))
                self.device_keys["mq-dev"] = \
                    json.loads(data)["authentication"]["symmetricKey"]["primaryKey"]
            try:
                problems, stored, kstored = self.verify(address)
            except (st.HubError, OSError, ValueError) as e:
                problems, stored, kstored = ["reading back: %s" % e], 0, 0
            self.commit_group(address, round_no)
            before = len(self.acked) + len(self.kafka_acked)
            stop = threading.Event()
            threads = [
                threading.Thread(target=self.https_client, args=(round_no, address, stop)),
                threading.Thread(target=self.mqtt_client,
                                 args=(round_no, self.hub.address("mqtt", "plain"), stop)),
                threading.Thread(target=self.kafka_client, args=(round_no, stop)),
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.4, 1.6))      # the random moment of the crash
            self.hub.kill9()
            stop.set()
            for t in threads:
                t.join(60)
            self.producer.poll(0)
            got = len(self.acked) + len(self.kafka_acked) - before
            tap.ok(not problems and got > 0,
                   "%s round %d: %d acknowledged (HTTPS, MQTT QoS 1, Kafka acks=all); earlier "
                   "ones intact (%d events, %d Kafka records stored), group offsets kept"
                   % (self.backend, round_no, got, stored, kstored),
                   "\n".join(problems[:20]) + "\n" + self.hub.log_tail(10))

        # A last clean start: the producer delivers what it still holds, then
        # everything is checked once more and sluiced stops with 0.
        self.hub.start()
        left = self.producer.flush(60)
        problems, stored, kstored = self.verify(self.hub.address("https", "plain"))
        unacked = len(self.kafka_sent) - len(self.kafka_acked)
        code = self.hub.stop()
        tap.ok(code == 0 and not problems and left == 0,
               "%s after %d kills: %d HTTPS / MQTT and %d Kafka messages acknowledged, all "
               "stored, Kafka ones once (%d never acknowledged), clean stop"
               % (self.backend, ROUNDS, len(self.acked), len(self.kafka_acked), unacked),
               "exit %r, %d left in the producer; %s" % (code, left, "\n".join(problems[:20])))


try:
    for backend in BACKENDS:
        Run(backend).run()
except st.HubError as e:
    tap.bail_out(str(e))
tap.done()
