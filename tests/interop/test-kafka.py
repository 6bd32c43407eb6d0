#!/usr/bin/python3
# transport-kafka against a real sluiced (storage-file, auth-key,
# transport-https for the cross-protocol checks): kcat metadata, produce with
# keys and headers under every compression codec and consume back, offsets
# (beginning, end, by timestamp); python3-kafka and python3-confluent-kafka
# produce and consume with acks 0 / 1 / all; a message sent over HTTPS read
# over Kafka with its properties as headers; and a raw client for the exact
# protocol answers: ApiVersions as served (and its unsupported-version
# answer), unknown topics, a corrupt batch, bad acks, a Fetch long poll woken
# by an append, answers in request order, oversize and malformed frames.
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()

if not shutil.which("mosquitto_pub"):
    tap.bail_out("mosquitto_pub not found: install the Debian package mosquitto-clients")
if not shutil.which("kcat"):
    tap.bail_out("kcat not found: install the Debian package kcat (apt-get install kcat)")
try:
    import kafka  # noqa: F401
    import confluent_kafka  # noqa: F401
except ImportError as e:
    tap.bail_out("%s: install the Debian packages python3-kafka and python3-confluent-kafka" % e)
for plugin in ("transport-https", "transport-kafka", "transport-mqtt"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

owner_key = st.new_key()
reader_key = st.new_key()
rot_key = st.new_key()
rot_key2 = st.new_key()
policies = {
    "rot": {"primary-key": rot_key, "rights": ["Send", "Listen"]},
    "owner": {"primary-key": owner_key,
              "rights": ["ServiceConnect", "Send", "Listen", "Manage", "RegistryRead",
                         "RegistryWrite"]},
    "reader": {"primary-key": reader_key, "rights": ["Listen"], "streams": ["orders"]},
}
streams = {
    "events": {"partitions": 4, "durability": "batch"},
    "orders": {"partitions": 3, "durability": "batch"},
    "codecs": {"partitions": 3, "durability": "interval"},
    "pyk": {"partitions": 2, "durability": "batch"},
    "raw": {"partitions": 1, "durability": "batch", "max-message": "64KiB"},
    "cross": {"partitions": 2, "durability": "batch"},
}
work = st.tempdir()
data_dir = os.path.join(work, "data")
kafka_sections = [
    ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0", "tls-listen": "127.0.0.1:0",
                         "anonymous-policy": "owner", "max-request": "1MiB"}),
    ("transport.mqtt", {"plugin": "mqtt", "listen": "127.0.0.1:0"}),
    # A second listener: auto-create on, a reader's rights, an advertised name.
    ("transport.kafka2", {"plugin": "kafka", "listen": "127.0.0.1:0",
                          "anonymous-policy": "owner", "auto-create-topics": True,
                          "default-partitions": 2, "node-id": 7}),
    ("transport.kafkar", {"plugin": "kafka", "listen": "127.0.0.1:0",
                          "anonymous-policy": "reader", "advertised": "kafka.example:19092"}),
    # No identity without SASL.
    ("transport.kafkas", {"plugin": "kafka", "listen": "127.0.0.1:0"}),
]
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=kafka_sections),
             workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path(
                 [os.path.join(st.builddir(), "plugins", "transport-kafka")])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
https = hub.address("https", "plain")
kaddr = hub.address("kafka", "plain")
kaddr2 = hub.address("kafka2", "plain")
kaddr_r = hub.address("kafkar", "plain")
kaddr_s = hub.address("kafkas", "plain")
SASL_BROKER = "%s:%d" % kaddr_s
BROKER = "%s:%d" % kaddr
tap.ok(kaddr[1] > 0, "sluiced reports the Kafka listener %s" % BROKER)


def kcat(*args, input=None, timeout=60, broker=BROKER):
    res = subprocess.run(["kcat", "-b", broker] + list(args), input=input,
                         capture_output=True, timeout=timeout)
    return res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")


# --- kcat: metadata ---------------------------------------------------------------------

rc, out, err = kcat("-L", "-J")
meta = json.loads(out) if rc == 0 and out.strip() else {}
brokers = meta.get("brokers", [])
tap.ok(rc == 0 and len(brokers) == 1 and brokers[0].get("name") == BROKER
       and brokers[0].get("id") == 1 and meta.get("controllerid") == 1,
       "kcat -L: one broker (this host, id 1) at the address connected to, and it is the "
       "controller", (rc, err, brokers, meta.get("controllerid")))
topics = {t["topic"]: t for t in meta.get("topics", [])}
tap.ok(set(streams) <= set(topics)
       and all(len(topics[s]["partitions"]) == streams[s]["partitions"] for s in streams),
       "kcat -L lists every stream as a topic with its partition count",
       {k: len(v.get("partitions", [])) for k, v in topics.items()})
p0 = topics.get("orders", {}).get("partitions", [{}])[0]
tap.ok(p0.get("leader") == 1 and [r.get("id") for r in p0.get("replicas", [])] == [1]
       and [r.get("id") for r in p0.get("isrs", [])] == [1],
       "a partition is led by this broker, which is its only replica and in sync", p0)

rc, out, err = kcat("-L", "-J", broker="%s:%d" % kaddr_r)
meta_r = json.loads(out) if rc == 0 and out.strip() else {}
tap.ok([b.get("name") for b in meta_r.get("brokers", [])] == ["kafka.example:19092"]
       and [t["topic"] for t in meta_r.get("topics", [])] == ["orders"],
       "advertised = kafka.example:19092 is what Metadata names; a policy scoped to one "
       "stream sees only that topic", (meta_r.get("brokers"), meta_r.get("topics")))

# --- kcat: produce with keys and headers, every codec; consume back -------------------------

FMT = "%p\t%o\t%k\t%s\t%h\t%T\n"


def consume_all(topic, *extra, broker=BROKER):
    rc, out, err = kcat("-C", "-t", topic, "-e", "-f", FMT, *extra, broker=broker)
    recs = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            recs.append({"p": int(parts[0]), "o": int(parts[1]), "k": parts[2], "v": parts[3],
                         "h": parts[4], "t": int(parts[5])})
    return rc, recs, err


def parse_headers(text):
    """kcat's %h (`k=v,k2=v2`); a piece without `=` continues the previous
    value (JSON values have commas)."""
    out, last = {}, None
    for piece in text.split(","):
        if "=" in piece and not piece.startswith('"'):
            last, value = piece.split("=", 1)
            out[last] = value
        elif last is not None:
            out[last] += "," + piece
    return out


sent = []
for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
    lines = "".join("%s-k%d:%s value %d\n" % (codec, i, codec, i) for i in range(3))
    rc, out, err = kcat("-P", "-t", "codecs", "-K:", "-z", codec, "-H", "codec=" + codec,
                        "-H", "n=2", "-X", "partitioner=murmur2_random",
                        input=lines.encode())
    tap.ok(rc == 0, "kcat -P -z %s: 3 keyed messages with 2 headers are taken" % codec, err)
    sent += [("%s-k%d" % (codec, i), "%s value %d" % (codec, i), codec) for i in range(3)]

rc, recs, err = consume_all("codecs")
got = sorted((r["k"], r["v"]) for r in recs)
tap.ok(rc == 0 and got == sorted((k, v) for k, v, _ in sent),
       "kcat -C reads all 15 messages back (5 codecs, batches passed through)", (rc, err, got))
tap.ok(all(r["h"] == "codec=%s,n=2" % r["k"].split("-")[0] for r in recs) and recs,
       "every message keeps its headers", [r["h"] for r in recs][:5])
tap.ok(all(r["p"] == st.partition_for_key(r["k"], 3) for r in recs) and recs,
       "murmur2 keys land where Kafka's Java partitioner puts them",
       [(r["k"], r["p"]) for r in recs][:5])
per_part = {}
for r in recs:
    per_part.setdefault(r["p"], []).append(r["o"])
tap.ok(all(sorted(o) == list(range(len(o))) for o in per_part.values()),
       "offsets within each partition are 0, 1, 2, ... (the stream's own)", per_part)
now_ms = int(time.time() * 1000)
tap.ok(all(abs(r["t"] - now_ms) < 120000 for r in recs),
       "timestamps are the append time (LogAppendTime)", [r["t"] for r in recs][:3])

# Offsets: from the end (nothing), the last one, by timestamp.
rc, recs_end, err = consume_all("codecs", "-o", "end")
tap.ok(rc == 0 and recs_end == [], "kcat -C -o end reads nothing", (rc, recs_end, err))
rc, recs_last, err = consume_all("codecs", "-o", "-1")
tap.ok(rc == 0 and len(recs_last) == len(per_part)
       and all(r["o"] == len(per_part[r["p"]]) - 1 for r in recs_last),
       "kcat -C -o -1 reads the last message of each partition", (rc, recs_last, err))

rc, out, err = kcat("-P", "-t", "codecs", "-p", "0", input=b"late one\n")
rc, recs2, err = consume_all("codecs", "-p", "0")
late = [r for r in recs2 if r["v"] == "late one"]
if late:
    ts = late[0]["t"]
    bad = []
    # Every distinct time in the partition, and one ms before each: the
    # search must land on the first message at or after it wherever it is.
    for t in sorted({r["t"] for r in recs2} | {r["t"] - 1 for r in recs2}):
        rc, recs_ts, err = consume_all("codecs", "-p", "0", "-o", "s@%d" % t)
        want = sorted(r["o"] for r in recs2 if r["t"] >= t)
        if rc != 0 or sorted(r["o"] for r in recs_ts) != want:
            bad.append((t, rc, [r["o"] for r in recs_ts], want))
    tap.ok(not bad and len(recs2) >= 3,
           "kcat -o s@TIMESTAMP (ListOffsets by time) starts at the first message at or "
           "after it, for every time in the partition", bad or recs2)
    rc, recs_future, err = consume_all("codecs", "-p", "0", "-o", "s@%d" % (ts + 3600000))
    tap.ok(rc == 0 and recs_future == [],
           "a timestamp after every message reads nothing", (rc, recs_future, err))
else:
    tap.ok(False, "the late message is read back", recs2)

# --- python3-kafka and python3-confluent-kafka ---------------------------------------------

PYK = r"""
import sys, kafka
broker, acks = sys.argv[1], sys.argv[2]
acks = int(acks) if acks in ("0", "1") else "all"
p = kafka.KafkaProducer(bootstrap_servers=broker, acks=acks)
fs = [p.send("pyk", key=b"kp-%d" % i, value=b"python-kafka %d" % i, headers=[("via", b"kp")])
      for i in range(10)]
p.flush(30)
print(sum(1 for f in fs if f.succeeded()))
c = kafka.KafkaConsumer(bootstrap_servers=broker, auto_offset_reset="earliest",
                        consumer_timeout_ms=5000, group_id=None)
c.assign([kafka.TopicPartition("pyk", 0), kafka.TopicPartition("pyk", 1)])
c.seek_to_beginning()
n = sum(1 for m in c if m.key and m.key.startswith(b"kp-") and dict(m.headers).get("via") == b"kp")
print(n)
"""

CK = r"""
import sys, confluent_kafka as ck
broker, acks = sys.argv[1], sys.argv[2]
p = ck.Producer({"bootstrap.servers": broker, "acks": acks, "linger.ms": 5})
ok = []
for i in range(10):
    p.produce("pyk", key=b"ck-%d" % i, value=b"confluent %d" % i, headers=[("via", b"ck")],
              on_delivery=lambda e, m: ok.append(e is None))
p.flush(30)
print(sum(ok))
c = ck.Consumer({"bootstrap.servers": broker, "group.id": "unused", "enable.auto.commit": False})
c.assign([ck.TopicPartition("pyk", 0, ck.OFFSET_BEGINNING), ck.TopicPartition("pyk", 1, ck.OFFSET_BEGINNING)])
n, empty = 0, 0
while empty < 3:
    m = c.poll(1.0)
    if m is None:
        empty += 1
        continue
    if m.error() is None and m.key().startswith(b"ck-") and dict(m.headers() or []).get("via") == b"ck":
        n += 1
print(n)
c.close()
"""

total_kp, total_ck = 0, 0
for acks in ("1", "-1", "0"):
    res = subprocess.run(["/usr/bin/python3", "-c", PYK, BROKER, "all" if acks == "-1" else acks],
                         capture_output=True, timeout=120)
    lines = res.stdout.decode().split()
    total_kp += 10
    tap.ok(res.returncode == 0 and lines[:1] == ["10"] and int(lines[1]) >= total_kp,
           "python3-kafka (acks=%s): 10 messages produced and read back with key and header"
           % acks, (res.returncode, lines, res.stderr.decode(errors="replace")[-800:]))
    res = subprocess.run(["/usr/bin/python3", "-c", CK, BROKER, acks],
                         capture_output=True, timeout=120)
    lines = res.stdout.decode().split()
    total_ck += 10
    tap.ok(res.returncode == 0 and lines[:1] == ["10"] and int(lines[1]) >= total_ck,
           "python3-confluent-kafka (acks=%s): 10 messages produced and read back with key "
           "and header" % acks, (res.returncode, lines, res.stderr.decode(errors="replace")[-800:]))

# --- cross-protocol: HTTPS in, Kafka out ---------------------------------------------------

OWNER = st.sas_token("localhost", owner_key, skn="owner")
status, _, data = st.http_request(
    https, "POST", "/cross/messages", body="from https",
    headers={"Authorization": OWNER, "iothub-app-level": "warn",
             "BrokerProperties": json.dumps({"PartitionKey": "dev-9", "MessageId": "m-1",
                                             "CorrelationId": "c-1"})})
tap.eq(status, 201, "POST /cross/messages over HTTPS: 201")
rc, recs, err = consume_all("cross")
hit = [r for r in recs if r["v"] == "from https"]
hdrs = parse_headers(hit[0]["h"]) if hit else {}
tap.ok(len(hit) == 1 and hit[0]["k"] == "dev-9" and hit[0]["p"] == st.partition_for_key("dev-9", 2)
       and hdrs.get("level") == "warn" and hdrs.get("message-id") == "m-1"
       and hdrs.get("correlation-id") == "c-1",
       "the HTTPS message reads over Kafka: key = partition key, properties as headers",
       (recs, err))

# MQTT device telemetry read over Kafka: key = device id, property bag and
# IoT Hub system properties as headers.
status, _, data = st.http_request(https, "PUT", "/devices/dev-k", body=json.dumps({"deviceId": "dev-k"}),
                                  headers={"Authorization": OWNER, "Content-Type": "application/json"})
dev_key = json.loads(data)["authentication"]["symmetricKey"]["primaryKey"] if status == 200 else ""
mqtt = hub.address("mqtt", "plain")
res = subprocess.run(["mosquitto_pub", "-V", "mqttv311", "-q", "1", "-h", mqtt[0], "-p", str(mqtt[1]),
                      "-i", "dev-k", "-u", "localhost/dev-k/?api-version=2021-04-12",
                      "-P", st.sas_token("localhost/devices/dev-k", dev_key),
                      "-t", "devices/dev-k/messages/events/%24.mid=m-7&color=red",
                      "-m", "from mqtt"], capture_output=True, timeout=30)
rc, recs, err = consume_all("events")
hit = [r for r in recs if r["v"] == "from mqtt"]
hdrs = parse_headers(hit[0]["h"]) if hit else {}
tap.ok(res.returncode == 0 and len(hit) == 1 and hit[0]["k"] == "dev-k"
       and hit[0]["p"] == st.partition_for_key("dev-k", 4) and hdrs.get("message-id") == "m-7"
       and hdrs.get("color") == "red" and hdrs.get("iothub-connection-device-id") == "dev-k",
       "MQTT device telemetry reads over Kafka: key = device id, properties as headers",
       (res.returncode, res.stderr, recs, err))

# TLS listener (the generated development certificate).
CA = os.path.join(data_dir, "tls", "dev-cert.pem")
ktls = hub.address("kafka", "tls")
TLS = ["-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + CA,
       "-X", "ssl.endpoint.identification.algorithm=none"]
rc, out, err = kcat("-P", "-t", "orders", "-p", "2", *TLS, input=b"over tls\n",
                    broker="%s:%d" % ktls)
rc2, recs, err2 = consume_all("orders", "-p", "2", *TLS, broker="%s:%d" % ktls)
tap.ok(rc == 0 and rc2 == 0 and "over tls" in [r["v"] for r in recs],
       "kcat over the TLS listener: produce and consume", (rc, err[-300:], rc2, err2[-300:]))

# --- auto-create (second listener) ------------------------------------------------------------

rc, out, err = kcat("-L", "-t", "nosuch-topic", "-J")
m = json.loads(out) if rc == 0 and out.strip() else {}
tap.ok([t.get("error") for t in m.get("topics", [])] == ["Broker: Unknown topic or partition"],
       "auto-create is off by default: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION",
       m.get("topics"))
rc, out, err = kcat("-P", "-t", "made-on-demand", "-X", "allow.auto.create.topics=true",
                    input=b"first\n", broker="%s:%d" % kaddr2)
rc, recs, err = consume_all("made-on-demand", broker="%s:%d" % kaddr2)
rc2, out2, _ = kcat("-L", "-t", "made-on-demand", "-J", broker="%s:%d" % kaddr2)
m2 = json.loads(out2) if rc2 == 0 and out2.strip() else {}
tap.ok([r["v"] for r in recs] == ["first"]
       and [len(t["partitions"]) for t in m2.get("topics", [])] == [2]
       and [b.get("id") for b in m2.get("brokers", [])] == [7],
       "auto-create-topics = true: producing to an unknown topic creates it "
       "(default-partitions 2, node-id 7)", (recs, err, m2))


# --- a raw client ----------------------------------------------------------------------------

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def zigzag(n):
    return st_varint((n << 1) ^ (n >> 63))


def st_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def record_batch(values, corrupt=False, pid=-1, epoch=-1, seq=-1):
    recs = b""
    for i, v in enumerate(values):
        body = b"\x00" + zigzag(0) + zigzag(i) + zigzag(-1) + zigzag(len(v)) + v + zigzag(0)
        recs += zigzag(len(body)) + body
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, now, now, pid, epoch, seq,
                            len(values)) + recs
    crc = crc32c(after_crc) ^ (1 if corrupt else 0)
    head = struct.pack(">iBI", -1, 2, crc)
    return struct.pack(">qi", 0, len(head) + len(after_crc)) + head + after_crc


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Raw:
    def __init__(self, addr=kaddr):
        self.sock = socket.create_connection(addr, timeout=15)
        self.buf = b""
        self.corr = 0

    def send(self, key, version, body, client="raw"):
        self.corr += 1
        frame = struct.pack(">hhi", key, version, self.corr) + kstr(client) + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.corr

    def recv(self, timeout=15):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">i", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    frame, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return struct.unpack(">i", frame[:4])[0], frame[4:]
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def closed(self, timeout=5):
        try:
            return self.recv(timeout) is None
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


def produce_body(topic, partition, records, acks=-1):
    return (kstr(None) + struct.pack(">hi", acks, 10000) + struct.pack(">i", 1) + kstr(topic)
            + struct.pack(">ii", 1, partition) + struct.pack(">i", len(records)) + records)


def parse_produce(body):
    # v3: [topic [partition error base_offset log_append_time]] throttle
    pos = 4
    n = struct.unpack(">h", body[pos:pos + 2])[0]
    pos += 2 + n + 4
    part, err, base, _ = struct.unpack(">ihqq", body[pos:pos + 22])
    return part, err, base


# ApiVersions v0: exactly what is served.
r = Raw()
r.send(18, 0, b"")
corr, body = r.recv()
err, n = struct.unpack(">hi", body[:6])
apis = {struct.unpack(">h", body[6 + 6 * i:8 + 6 * i])[0]:
        struct.unpack(">hh", body[8 + 6 * i:12 + 6 * i]) for i in range(n)}
SERVED = {0: (3, 7), 1: (4, 11), 2: (1, 5), 3: (0, 8), 8: (2, 7), 9: (1, 5), 10: (0, 2),
          11: (0, 5), 12: (0, 3), 13: (0, 3), 14: (0, 3), 17: (0, 1), 18: (0, 3), 19: (0, 4),
          20: (0, 3), 22: (0, 4), 32: (0, 2), 36: (0, 1)}
tap.ok(corr == 1 and err == 0 and apis == SERVED,
       "ApiVersions v0 lists exactly what is served", apis)
r.send(18, 9, b"\x00")
corr, body = r.recv()
err = struct.unpack(">h", body[:2])[0]
tap.ok(corr == 2 and err == 35 and len(body) >= 6,
       "ApiVersions v9 is answered in v0 with UNSUPPORTED_VERSION (35) and the ranges", body[:8])

# Metadata v1 of an unknown topic; Produce errors.
r.send(3, 1, struct.pack(">i", 1) + kstr("no-such-topic"))
corr, body = r.recv()
tap.ok(b"no-such-topic" in body and struct.pack(">h", 3) + kstr("no-such-topic") in body,
       "Metadata v1 of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3)", body[-40:])
r.send(0, 3, produce_body("raw", 0, record_batch([b"bad crc"], corrupt=True)))
part, err, base = parse_produce(r.recv()[1])
tap.eq(err, 2, "a batch whose CRC does not match: CORRUPT_MESSAGE (2)")
r.send(0, 3, produce_body("raw", 0, record_batch([b"x"]), acks=5))
part, err, base = parse_produce(r.recv()[1])
tap.eq(err, 21, "acks = 5: INVALID_REQUIRED_ACKS (21)")
r.send(0, 3, produce_body("raw", 0, record_batch([b"x" * 70000])))
part, err, base = parse_produce(r.recv()[1])
tap.eq(err, 10, "a batch over the stream's max-message: MESSAGE_TOO_LARGE (10)")
r.send(0, 3, produce_body("raw", 5, record_batch([b"x"])))
part, err, base = parse_produce(r.recv()[1])
tap.eq(err, 3, "a partition the stream does not have: UNKNOWN_TOPIC_OR_PARTITION (3)")
r.send(0, 3, produce_body("raw", 0, b"\x00" * 30))
part, err, base = parse_produce(r.recv()[1])
tap.eq(err, 2, "a record set that is no v2 batch: CORRUPT_MESSAGE (2)")

# Answers in request order: a Produce (acks=-1, durability batch) then ApiVersions at once.
c1 = r.send(0, 3, produce_body("raw", 0, record_batch([b"one", b"two"])))
c2 = r.send(18, 0, b"")
first, second = r.recv(), r.recv()
tap.ok(first[0] == c1 and second[0] == c2,
       "pipelined requests are answered in request order", (c1, c2, first[0], second[0]))
part, err, base = parse_produce(first[1])
tap.ok(err == 0 and base == 0, "the raw batch is appended at offset 0", (err, base))


def fetch_body(topic, partition, offset, max_wait, min_bytes=1, max_bytes=1 << 20,
               part_max=1 << 20):
    return (struct.pack(">iiiiB", -1, max_wait, min_bytes, max_bytes, 0) + struct.pack(">i", 1)
            + kstr(topic) + struct.pack(">i", 1) + struct.pack(">iqqi", partition, offset, -1, part_max))


def parse_fetch(body):
    # v5: throttle [topic [partition error hw lso log_start aborted records]]
    pos = 4 + 4
    n = struct.unpack(">h", body[pos:pos + 2])[0]
    pos += 2 + n + 4
    part, err, hw, lso, lstart, aborted = struct.unpack(">ihqqqi", body[pos:pos + 34])
    pos += 34
    size = struct.unpack(">i", body[pos:pos + 4])[0]
    return err, hw, max(size, 0)


r2 = Raw()
t0 = time.monotonic()
r2.send(1, 5, fetch_body("raw", 0, 2, 300))
err, hw, size = parse_fetch(r2.recv()[1])
waited = time.monotonic() - t0
tap.ok(err == 0 and hw == 2 and size == 0 and waited >= 0.25,
       "Fetch at the end waits max_wait (300 ms) and answers empty", (err, hw, size, waited))
t0 = time.monotonic()
r2.send(1, 5, fetch_body("raw", 0, 2, 20000))
time.sleep(0.2)  # let the Fetch start waiting before the append that wakes it
kcat("-P", "-t", "raw", "-p", "0", input=b"wake up\n")
err, hw, size = parse_fetch(r2.recv(timeout=25)[1])
waited = time.monotonic() - t0
tap.ok(err == 0 and hw == 3 and size > 0 and waited < 10,
       "a Fetch long poll (max_wait 20 s) is answered by the append, not the timeout",
       (err, hw, size, waited))
r2.send(1, 5, fetch_body("raw", 0, 0, 0, part_max=1))
err, hw, size_one = parse_fetch(r2.recv()[1])
r2.send(1, 5, fetch_body("raw", 0, 0, 0, max_bytes=1))
err2, hw2, size_one2 = parse_fetch(r2.recv()[1])
r2.send(1, 5, fetch_body("raw", 0, 0, 0))
err3, hw3, size_all = parse_fetch(r2.recv()[1])
tap.ok(err == err2 == err3 == 0 and 0 < size_one == size_one2 < size_all,
       "partition max_bytes and max_bytes of 1 still return the first batch whole (KIP-74), "
       "and only it", (size_one, size_one2, size_all))
r2.send(1, 5, fetch_body("raw", 0, 99, 0))
err, hw, size = parse_fetch(r2.recv()[1])
tap.eq(err, 1, "Fetch beyond the end: OFFSET_OUT_OF_RANGE (1)")
r2.close()

# acks=0: no answer at all; a failed append closes the connection instead.
ra = Raw()
ra.send(0, 3, produce_body("raw", 0, record_batch([b"fire and forget"]), acks=0))
c_after = ra.send(18, 0, b"")
tap.eq(ra.recv()[0], c_after, "acks=0 is not answered: the next answer is the next request's")
ra.send(0, 3, produce_body("raw", 0, record_batch([b"bad"], corrupt=True), acks=0))
tap.ok(ra.closed(), "a failed acks=0 Produce closes the connection (its only way to tell)")

# Bad frames close the connection; the hub goes on.
r3 = Raw()
r3.sock.sendall(struct.pack(">i", 2 << 20))
tap.ok(r3.closed(), "a request larger than max-request (1 MiB) closes the connection")
r4 = Raw()
r4.send(99, 0, b"")
tap.ok(r4.closed(), "an unknown API key closes the connection")
r5 = Raw()
r5.sock.sendall(struct.pack(">i", 20) + struct.pack(">hhi", 3, 1, 1) + b"\x00\x05ab")
r5.sock.shutdown(socket.SHUT_WR)
tap.ok(r5.closed(), "a truncated frame then EOF: closed")
r6 = Raw()
r6.send(3, 1, struct.pack(">i", 0x7FFFFFFF))
tap.ok(r6.closed(), "a malformed Metadata request (array longer than the frame) closes")
r.send(18, 0, b"")
tap.ok(r.recv() is not None, "other connections keep working")
r.close()

# Rights: a Listen-only policy cannot produce (the advertised name of that
# listener is not reachable, so a raw client on the bootstrap connection).
r7 = Raw(kaddr_r)
r7.send(0, 3, produce_body("orders", 0, record_batch([b"nope"])))
part, err, base = parse_produce(r7.recv()[1])
tap.eq(err, 29, "a Listen-only principal cannot produce: TOPIC_AUTHORIZATION_FAILED (29)")
r7.send(0, 3, produce_body("events", 0, record_batch([b"nope"])))
part, err, base = parse_produce(r7.recv()[1])
tap.eq(err, 29, "nor send to a stream outside its scope")
r7.close()

# --- SASL ------------------------------------------------------------------------------------

r8 = Raw(kaddr_s)
r8.send(0, 3, produce_body("orders", 0, record_batch([b"who"])))
part, err, base = parse_produce(r8.recv()[1])
tap.eq(err, 29, "without SASL (and no anonymous-policy) nothing may be produced: 29")
r8.send(17, 1, kstr("GSSAPI"))
corr, body = r8.recv()
tap.ok(struct.unpack(">h", body[:2])[0] == 33 and b"PLAIN" in body and b"SCRAM-SHA-256" in body
       and b"SCRAM-SHA-512" in body and r8.closed(),
       "SaslHandshake with GSSAPI: UNSUPPORTED_SASL_MECHANISM (33) naming PLAIN, SCRAM-SHA-256 "
       "and -512, then closed", body)


def sasl_args(mech, user, password):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
            "-X", "sasl.username=" + user, "-X", "sasl.password=" + password]


def sasl_roundtrip(label, mech, user, password, todo=None):
    value = "sasl %s" % label
    rc, out, err = kcat("-P", "-t", "orders", "-p", "1", *sasl_args(mech, user, password),
                        input=(value + "\n").encode(), broker=SASL_BROKER, timeout=30)
    rc2, recs, err2 = consume_all("orders", "-p", "1", *sasl_args(mech, user, password),
                                  broker=SASL_BROKER)
    ok = rc == 0 and rc2 == 0 and value in [r["v"] for r in recs]
    # A known gap is reported as TODO while it fails and passes plainly once
    # fixed (an unexpected TODO pass would count as a failure).
    tap.ok(ok, "kcat SASL %s (%s): produce and consume" % (mech, label),
           (rc, err[-300:], rc2, err2[-300:]), todo=None if ok else todo)


sasl_roundtrip("policy key", "PLAIN", "owner", owner_key)
sasl_roundtrip("SAS token", "PLAIN", "owner",
               st.sas_token("sb://localhost/orders", owner_key, skn="owner", key_is_base64=False))
sasl_roundtrip("$ConnectionString", "PLAIN", "$ConnectionString",
               "Endpoint=sb://localhost/;SharedAccessKeyName=owner;SharedAccessKey=%s;"
               "EntityPath=orders" % owner_key)
# librdkafka 2.0 sends the client nonce again before the server's combined
# nonce in client-final; Kafka's broker accepts a nonce that ends with its own.
for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
    sasl_roundtrip("policy key", mech, "owner", owner_key)
rc, out, err = kcat("-P", "-t", "orders", *sasl_args("PLAIN", "owner", st.new_key()),
                    input=b"wrong\n", broker=SASL_BROKER, timeout=30)
tap.ok(rc != 0 and "Authentication failed" in err, "kcat SASL PLAIN with a wrong key is refused",
       (rc, err[-300:]))

PYSASL = r"""
import sys, kafka
broker, mech, user, password = sys.argv[1:5]
p = kafka.KafkaProducer(bootstrap_servers=broker, security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password)
md = p.send("orders", key=b"kp-sasl", value=mech.encode()).get(30)
print(md.offset >= 0)
"""
for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
    res = subprocess.run(["/usr/bin/python3", "-c", PYSASL, SASL_BROKER, mech, "owner", owner_key],
                         capture_output=True, timeout=120)
    tap.ok(res.returncode == 0 and res.stdout.decode().split() == ["True"],
           "python3-kafka SASL %s (bare tokens after the handshake): produce" % mech,
           (res.returncode, res.stdout, res.stderr.decode(errors="replace")[-600:]))
res = subprocess.run(["/usr/bin/python3", "-c", PYSASL, SASL_BROKER, "SCRAM-SHA-256", "owner",
                      st.new_key()], capture_output=True, timeout=120)
tap.ok(res.returncode != 0, "python3-kafka SCRAM-SHA-256 with a wrong key is refused",
       res.stdout)

CKSASL = r"""
import sys, confluent_kafka as ck
broker, mech, user, password = sys.argv[1:5]
p = ck.Producer({"bootstrap.servers": broker, "security.protocol": "SASL_PLAINTEXT",
                 "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password})
ok = []
p.produce("orders", value=b"ck-sasl", on_delivery=lambda e, m: ok.append(e is None))
p.flush(20)
print(ok)
"""
res = subprocess.run(["/usr/bin/python3", "-c", CKSASL, SASL_BROKER, "PLAIN", "owner", owner_key],
                     capture_output=True, timeout=120)
tap.ok(res.returncode == 0 and res.stdout.decode().split() == ["[True]"],
       "python3-confluent-kafka SASL PLAIN: produce", (res.stdout, res.stderr[-400:]))

# Revocation: a SASL session of a policy whose key is rotated (SIGHUP) is closed.
rr = Raw(kaddr_s)
rr.send(17, 1, kstr("PLAIN"))
hs_err = struct.unpack(">h", rr.recv()[1][:2])[0]
token = b"\0rot\0" + rot_key.encode()
rr.send(36, 0, struct.pack(">i", len(token)) + token)
auth_err = struct.unpack(">h", rr.recv()[1][:2])[0]
rr.send(3, 1, struct.pack(">i", 1) + kstr("orders"))
meta_ok = rr.recv() is not None
tap.ok(hs_err == 0 and auth_err == 0 and meta_ok,
       "raw SaslHandshake v1 + SaslAuthenticate v0 (PLAIN, policy 'rot'): authenticated",
       (hs_err, auth_err))
with open(hub.config_path) as f:
    conf = f.read()
with open(hub.config_path, "w") as f:
    f.write(conf.replace(rot_key, rot_key2))
hub.proc.send_signal(__import__("signal").SIGHUP)
tap.ok(rr.closed(timeout=10), "rotating the policy's key (SIGHUP) closes its Kafka session")
rr.close()
# SCRAM follows the reload too: verifiers derived from the new key, the old
# key refused, without a restart. The transports reload after the auth
# plugins (which closed the session above), one after the other: wait for the
# line the hub logs once all of them did.
deadline = time.monotonic() + 15
while time.monotonic() < deadline \
        and "policies reloaded from" not in open(hub.log_path, errors="replace").read():
    time.sleep(0.1)
for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
    res = subprocess.run(["/usr/bin/python3", "-c", PYSASL, SASL_BROKER, mech, "rot", rot_key2],
                         capture_output=True, timeout=120)
    tap.ok(res.returncode == 0 and res.stdout.decode().split() == ["True"],
           "after the SIGHUP, python3-kafka SASL %s with the rotated key: produce" % mech,
           (res.returncode, res.stdout, res.stderr.decode(errors="replace")[-600:]))
res = subprocess.run(["/usr/bin/python3", "-c", PYSASL, SASL_BROKER, "SCRAM-SHA-256", "rot",
                      rot_key], capture_output=True, timeout=120)
tap.ok(res.returncode != 0, "after the SIGHUP, SCRAM-SHA-256 with the old key is refused",
       res.stdout)

# --- a large request arriving in pieces (gathered in a buffer of its own) --------------------

# Three batches of one 60 KB record each ("raw" takes batches up to 64 KiB).
big = b"".join(record_batch([c * 60000]) for c in (b"x", b"y", b"z"))
small = record_batch([b"after-big"])
rg = Raw()
frames = []
for records in (big, small):
    rg.corr += 1
    f = struct.pack(">hhi", 0, 3, rg.corr) + kstr("raw") + produce_body("raw", 0, records)
    frames.append(struct.pack(">i", len(f)) + f)
wire = frames[0] + frames[1]
# Cut inside the size field, inside the frame, and across the boundary of the two.
cuts = [0, 3, 40000, 100000, len(frames[0]) + 10, len(wire)]
for a, b in zip(cuts, cuts[1:]):
    rg.sock.sendall(wire[a:b])
    time.sleep(0.05)
_, e1, o1 = parse_produce(rg.recv()[1])
_, e2, o2 = parse_produce(rg.recv()[1])
tap.ok(e1 == 0 and e2 == 0 and o1 >= 0 and o2 == o1 + 3,
       "a 180 KB Produce (three batches) arriving in five pieces, the next one in the same piece: both "
       "appended, in order", (e1, o1, e2, o2))
rg.send(1, 5, fetch_body("raw", 0, o1, 0))
err, hw, size = parse_fetch(rg.recv()[1])
tap.ok(err == 0 and hw == o2 + 1 and size >= 180000, "and the large batch reads back whole",
       (err, hw, size))
rg.close()

# --- idempotent producers ---------------------------------------------------------------------

CKIDEM = r"""
import sys, confluent_kafka as ck
p = ck.Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True})
res = []
for i in range(50):
    p.produce("pyk", key=b"idem-%d" % i, value=b"x", on_delivery=lambda e, m: res.append(e is None))
p.flush(20)
print(sum(res))
"""
res = subprocess.run(["/usr/bin/python3", "-c", CKIDEM, BROKER], capture_output=True, timeout=120)
tap.ok(res.returncode == 0 and res.stdout.decode().split() == ["50"],
       "python3-confluent-kafka with enable.idempotence: InitProducerId v4 (flexible) and "
       "50 sequenced messages", (res.stdout, res.stderr.decode(errors="replace")[-500:]))


def init_producer_id(raw):
    raw.send(22, 0, kstr(None) + struct.pack(">i", 60000))
    body = raw.recv()[1]
    return struct.unpack(">ihqh", body[:16])


ri = Raw()
throttle, err, pid, epoch = init_producer_id(ri)
tap.ok(err == 0 and pid >= 0 and epoch == 0, "InitProducerId v0: a producer id, epoch 0",
       (err, pid, epoch))
_, _, pid2, _ = init_producer_id(ri)
tap.ok(pid2 != pid, "every InitProducerId gets a new id", (pid, pid2))
b0 = record_batch([b"idem-0"], pid=pid, epoch=0, seq=0)
ri.send(0, 3, produce_body("raw", 0, b0))
_, err0, off0 = parse_produce(ri.recv()[1])
ri.send(0, 3, produce_body("raw", 0, b0))
_, err_dup, off_dup = parse_produce(ri.recv()[1])
tap.ok(err0 == 0 and err_dup == 0 and off_dup == off0,
       "the same sequenced batch sent twice is answered with its first offset", (err0, off0, err_dup, off_dup))
ri.send(0, 3, produce_body("raw", 0, record_batch([b"gap"], pid=pid, epoch=0, seq=5)))
_, err_gap, _ = parse_produce(ri.recv()[1])
tap.eq(err_gap, 45, "a sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER (45)")
ri.send(0, 3, produce_body("raw", 0, record_batch([b"idem-1"], pid=pid, epoch=0, seq=1)))
_, err1, off1 = parse_produce(ri.recv()[1])
tap.ok(err1 == 0 and off1 == off0 + 1, "the next sequence is appended right after", (err1, off0, off1))
ri.close()

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly (exit 0)")

# --- after a restart ------------------------------------------------------------------------------

try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not restart: %s" % e)
kaddr = hub.address("kafka", "plain")
ri = Raw(kaddr)
ri.send(0, 3, produce_body("raw", 0, record_batch([b"idem-1"], pid=pid, epoch=0, seq=1)))
_, err_r, off_r = parse_produce(ri.recv()[1])
tap.ok(err_r == 0 and off_r == off1,
       "after a restart a retry of the last batch is still known: its original offset",
       (err_r, off_r, off1))
ri.send(0, 3, produce_body("raw", 0, record_batch([b"idem-2"], pid=pid, epoch=0, seq=2)))
_, err_n, off_n = parse_produce(ri.recv()[1])
tap.ok(err_n == 0 and off_n == off1 + 1, "and the producer goes on with its next sequence",
       (err_n, off_n))
_, _, pid3, _ = init_producer_id(ri)
tap.ok(pid3 > max(pid, pid2), "producer ids are not handed out twice across a restart",
       (pid, pid2, pid3))
ri.send(0, 3, produce_body("raw", 0, record_batch([b"p3-0"], pid=pid3, epoch=0, seq=0)))
_, err_p3, off_p3 = parse_produce(ri.recv()[1])
ri.close()

# kill -9 right after an acknowledged idempotent batch: no snapshot has it;
# the state is rebuilt from the log tail.
hub.kill9()
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not restart after kill -9: %s" % e)
ri = Raw(hub.address("kafka", "plain"))
ri.send(0, 3, produce_body("raw", 0, record_batch([b"p3-0"], pid=pid3, epoch=0, seq=0)))
_, err_k, off_k = parse_produce(ri.recv()[1])
tap.ok(err_p3 == 0 and err_k == 0 and off_k == off_p3,
       "after kill -9 a retried idempotent batch is still recognised (rebuilt from the log): "
       "its original offset", (err_p3, off_p3, err_k, off_k))
ri.close()
code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly again (exit 0)")
tap.done()
