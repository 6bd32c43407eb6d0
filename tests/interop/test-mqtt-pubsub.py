#!/usr/bin/python3
# transport-mqtt as a broker, against a real sluiced: plain pub/sub with
# mosquitto_pub / mosquitto_sub (3.1.1 and 5, QoS 0 / 1 / 2, retained, wills)
# and python3-paho-mqtt (persistent sessions across a sluiced restart,
# shared subscriptions, MQTT 5 properties, subscription identifiers,
# no-local, topic aliases, `$` topics, take-over), [mqtt-acl.*] refusals,
# [mqtt-map.*] appends read back over HTTPS, back-pressure from a subscriber
# that stops reading (nothing lost), and v5 re-authentication with AUTH. No
# packaged client sends AUTH, so that part uses a raw-socket client of ours.
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
HOST = "localhost"

for tool, package in (("mosquitto_pub", "mosquitto-clients"), ("mosquitto_sub", "mosquitto-clients")):
    if not shutil.which(tool):
        tap.bail_out("%s not found: install the Debian package %s" % (tool, package))
try:
    import paho.mqtt.client as paho
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
except ImportError:
    tap.bail_out("paho-mqtt not found: install the Debian package python3-paho-mqtt")

owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                 "DeviceConnect", "Send", "Listen", "Manage"]}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
extra = [
    ("transport.mqtt", {"plugin": "mqtt", "listen": "127.0.0.1:0", "tls-listen": "127.0.0.1:0",
                        "max-queued-messages": "50", "topic-alias-maximum": "8",
                        "max-topic-levels": "8"}),
    # Limits: two connections at most.
    ("transport.mqttsmall", {"plugin": "mqtt", "listen": "127.0.0.1:0", "max-connections": "2"}),
    ("mqtt-acl.anon", {"principal": "anonymous", "publish": ["public/#", "sensors/#"],
                       "subscribe": ["public/#"]}),
    ("mqtt-acl.owner", {"principal": "policy:owner", "publish": ["#", "$private/#"],
                        "subscribe": ["#", "$private/#"]}),
    ("mqtt-acl.fleet", {"principal": "device:*", "publish": ["fleet/%d/#"],
                        "subscribe": ["fleet/%d/#"]}),
    ("mqtt-map.sensors", {"filter": "sensors/#", "stream": "sensors", "key": "topic",
                          "direction": "in"}),
    ("mqtt-map.cmds", {"stream": "commands", "direction": "out", "topic-prefix": "public/cmd"}),
    ("mqtt-map.loop", {"filter": "public/loop/#", "stream": "loop", "key": "topic",
                       "direction": "both", "topic-prefix": "public/loop/out"}),
]
streams = {"events": {"partitions": 2, "durability": "batch"},
           "sensors": {"partitions": 2, "durability": "batch"},
           "commands": {"partitions": 2, "durability": "batch"},
           "loop": {"partitions": 1, "durability": "batch"}}
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=extra,
                                 hub={"log-level": "info"}).replace(
                 "[auth]\nchain = key\n", "[auth]\nchain = key\nallow-anonymous = true\n"),
             workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
OWNER = st.sas_token(HOST, owner_key, skn="owner")


def addr():
    return hub.address("mqtt", "plain")


def https():
    return hub.address("https", "plain")


# --- helpers -------------------------------------------------------------

def mosquitto_sub(args, count, timeout=20):
    host, port = addr()
    cmd = ["mosquitto_sub", "-h", host, "-p", str(port), "-C", str(count), "-W", str(timeout),
           "-v"] + args
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mosquitto_pub(args):
    host, port = addr()
    cmd = ["mosquitto_pub", "-h", host, "-p", str(port)] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


class Client:
    """A paho client that records what it gets."""

    def __init__(self, client_id, v5=True, clean=True, expiry=None, username=None,
                 password=None, will=None, props=None):
        self.c = paho.Client(client_id=client_id,
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                             clean_session=None if v5 else clean)
        self.v5 = v5
        self.clean = clean
        self.expiry = expiry
        self.messages = []
        self.acks = {}
        self.suback = None
        self.connack = None
        self.disconnect_rc = None
        self.cond = threading.Condition()
        if username is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            self.c.will_set(*will)
        self.connect_props = props
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect

    def _on_message(self, c, u, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def _on_connect(self, c, u, flags, rc, props=None):
        with self.cond:
            self.connack = (flags.get("session present", 0), rc, props)
            self.cond.notify_all()

    def _on_subscribe(self, c, u, mid, granted, props=None):
        with self.cond:
            self.suback = granted
            self.cond.notify_all()

    def _on_publish(self, c, u, mid):
        with self.cond:
            self.acks[mid] = True
            self.cond.notify_all()

    def _on_disconnect(self, c, u, rc, props=None):
        with self.cond:
            self.disconnect_rc = rc
            self.cond.notify_all()

    def wait(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def connect(self):
        host, port = addr()
        if self.v5:
            props = self.connect_props or Properties(PacketTypes.CONNECT)
            if self.expiry is not None:
                props.SessionExpiryInterval = self.expiry
            self.c.connect(host, port, keepalive=30, clean_start=self.clean, properties=props)
        else:
            self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        ok = self.wait(lambda: self.connack is not None)
        return self.connack if ok else None

    def subscribe(self, topic, qos=1, **kw):
        self.suback = None
        if self.v5:
            opts = paho.SubscribeOptions(qos=qos, noLocal=kw.get("no_local", False),
                                         retainAsPublished=kw.get("rap", False),
                                         retainHandling=kw.get("rh", 0))
            props = None
            if "sub_id" in kw:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = kw["sub_id"]
            self.c.subscribe(topic, options=opts, properties=props)
        else:
            self.c.subscribe(topic, qos)
        self.wait(lambda: self.suback is not None)
        return self.suback

    def publish(self, topic, payload, qos=1, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos > 0:
            self.wait(lambda: info.mid in self.acks)
        return info

    def got(self, n, timeout=15):
        return self.wait(lambda: len(self.messages) >= n, timeout)

    def close(self, clean=True):
        try:
            if clean:
                self.c.disconnect()
            else:
                # No DISCONNECT: what a crashed client looks like.
                self.c.socket().close()
        except Exception:
            pass
        self.c.loop_stop()


def reason_value(code):
    return code.value if hasattr(code, "value") else code


# --- 1. plain pub/sub with mosquitto in both versions and every QoS ------

for version in ("mqttv311", "mqttv5"):
    for qos in (0, 1, 2):
        topic = "public/%s/q%d" % (version, qos)
        sub = mosquitto_sub(["-V", version, "-q", str(qos), "-t", topic], 3)
        time.sleep(0.3)  # let the SUBACK come back before publishing
        for i in range(3):
            r = mosquitto_pub(["-V", version, "-q", str(qos), "-t", topic, "-m", "m%d" % i])
            if r.returncode != 0:
                tap.diag(r.stderr)
        out, err = sub.communicate(timeout=30)
        tap.eq(out.split("\n")[:3], ["%s m%d" % (topic, i) for i in range(3)],
               "mosquitto %s QoS %d: 3 messages published, 3 received in order" % (version, qos))

# Over TLS, both versions (the hub's generated development certificate as CA).
CA = os.path.join(data_dir, "tls", "dev-cert.pem")
tls_port = hub.address("mqtt", "tls")[1]
for version in ("mqttv311", "mqttv5"):
    topic = "public/tls/%s" % version
    sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(tls_port), "--cafile", CA,
                            "-V", version, "-q", "2", "-t", topic, "-C", "2", "-W", "20", "-v"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    for i in range(2):
        subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(tls_port), "--cafile", CA,
                        "-V", version, "-q", "2", "-t", topic, "-m", "t%d" % i],
                       capture_output=True, timeout=30)
    out, err = sub.communicate(timeout=30)
    tap.eq(out.split("\n")[:2], ["%s t0" % topic, "%s t1" % topic],
           "mosquitto_sub / mosquitto_pub %s over TLS, QoS 2" % version)

# --- 2. ACL refusals -----------------------------------------------------

c = Client("anon-refused")
c.connect()
granted = c.subscribe("private/#")
tap.ok(granted and reason_value(granted[0]) == 0x87,
       "v5: SUBSCRIBE outside the ACL gets SUBACK 0x87", granted)
info = c.c.publish("private/x", b"no", qos=1)
c.wait(lambda: info.is_published() or c.disconnect_rc is not None, 5)
c.close()
r = mosquitto_pub(["-V", "mqttv311", "-q", "1", "-t", "private/x", "-m", "no"])
tap.ok(r.returncode != 0, "3.1.1: a QoS 1 PUBLISH outside the ACL closes the connection "
       "(no PUBACK)", r.stderr)
r = mosquitto_pub(["-V", "mqttv5", "-q", "1", "-t", "private/x", "-m", "no"])
tap.ok(r.returncode != 0 or "not authorized" in (r.stderr + r.stdout).lower(),
       "v5 mosquitto_pub is told its PUBLISH outside the ACL was refused", r.stderr)

# Limits: topic levels, connections.
c = Client("levels")
c.connect()
info = c.c.publish("public/" + "/".join("l%d" % i for i in range(9)), b"deep", qos=1)
c.wait(lambda: info.is_published() or c.disconnect_rc is not None, 5)
c.close()
r = mosquitto_pub(["-V", "mqttv5", "-q", "1", "-t", "public/" + "/".join(["x"] * 9), "-m", "deep"])
tap.ok(r.returncode != 0 or "topic name invalid" in (r.stderr + r.stdout).lower(),
       "a topic with more levels than max-topic-levels is refused", r.stderr)


def raw_connect(address, client_id):
    s = socket.create_connection(address)
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + struct.pack(">H", len(client_id)) \
        + client_id.encode()
    s.settimeout(5)
    try:
        s.sendall(bytes([0x10, len(body)]) + body)
        return s, s.recv(64)
    except OSError:
        return s, b""


small = hub.address("mqttsmall", "plain")
held = [raw_connect(small, "lim-%d" % i) for i in range(2)]
third, ack = raw_connect(small, "lim-3")
tap.ok(all(a[:4] == b"\x20" + bytes([len(a) - 2]) + b"\x00\x00" for _, a in held) and ack == b"",
       "max-connections 2: two clients are served, a third is closed at once (logged)", ack)
for sock, _ in held + [(third, None)]:
    sock.close()

# --- 3. retained ---------------------------------------------------------

mosquitto_pub(["-q", "1", "-r", "-t", "public/retained/a", "-m", "kept-a"])
mosquitto_pub(["-q", "1", "-r", "-t", "public/retained/b", "-m", "kept-b"])
sub = mosquitto_sub(["-q", "1", "-t", "public/retained/#", "-F", "%r %t %p"], 2)
out, _ = sub.communicate(timeout=30)
tap.eq(sorted(out.split("\n")[:2]), ["1 public/retained/a kept-a", "1 public/retained/b kept-b"],
       "a new subscriber gets both retained messages with RETAIN set")
mosquitto_pub(["-q", "1", "-r", "-t", "public/retained/a", "-n"])
sub = mosquitto_sub(["-q", "1", "-t", "public/retained/#", "-F", "%t %p"], 1, timeout=3)
out, _ = sub.communicate(timeout=30)
tap.eq(out.split("\n")[:2], ["public/retained/b kept-b", ""],
       "an empty retained PUBLISH deletes the retained message")

# --- 4. wills ------------------------------------------------------------

watcher = Client("will-watcher")
watcher.connect()
watcher.subscribe("public/will/#", qos=1)
w = Client("will-crash", will=("public/will/crash", b"gone", 1, False))
w.connect()
w.close(clean=False)
tap.ok(watcher.got(1) and watcher.messages[0].payload == b"gone",
       "a client that drops its socket has its will published",
       [m.payload for m in watcher.messages])
w = Client("will-clean", will=("public/will/clean", b"should-not", 1, False))
w.connect()
w.close(clean=True)
time.sleep(0.5)
tap.ok(all(m.topic != "public/will/clean" for m in watcher.messages),
       "a normal DISCONNECT discards the will")
watcher.close()

# --- 5. QoS 2 exactly once, MQTT 5 properties ---------------------------

sub = Client("props-sub")
sub.connect()
sub.subscribe("public/props/#", qos=2, sub_id=42)
pub = Client("props-pub")
pub.connect()
props = Properties(PacketTypes.PUBLISH)
props.UserProperty = [("k1", "v1"), ("k2", "v2")]
props.ContentType = "application/json"
props.ResponseTopic = "public/props/reply"
props.CorrelationData = b"\x01\x02corr"
props.MessageExpiryInterval = 3600
props.PayloadFormatIndicator = 1
for i in range(5):
    pub.publish("public/props/x", b"exactly-%d" % i, qos=2, props=props)
tap.ok(sub.got(5), "QoS 2: 5 messages arrive")
time.sleep(0.5)
tap.eq([m.payload for m in sub.messages], [b"exactly-%d" % i for i in range(5)],
       "QoS 2: exactly once, in order")
m = sub.messages[0]
p = m.properties
tap.ok(m.qos == 2 and p.UserProperty == [("k1", "v1"), ("k2", "v2")]
       and p.ContentType == "application/json" and p.ResponseTopic == "public/props/reply"
       and p.CorrelationData == b"\x01\x02corr" and p.PayloadFormatIndicator == 1
       and 3500 < p.MessageExpiryInterval <= 3600,
       "v5 properties pass through (user properties, content type, response topic, "
       "correlation data, payload format, message expiry counting down)", str(p))
tap.eq(getattr(p, "SubscriptionIdentifier", None), [42],
       "the subscription identifier comes with the message")

# no-local and retain-as-published
sub.messages.clear()
sub.subscribe("public/nolocal", qos=1, no_local=True)
sub.publish("public/nolocal", b"mine", qos=1)
pub.publish("public/nolocal", b"theirs", qos=1)
sub.got(1)
time.sleep(0.3)
tap.eq([m.payload for m in sub.messages], [b"theirs"], "no-local: own messages are not sent back")
sub.messages.clear()
sub.subscribe("public/rap", qos=1, rap=True)
pub.publish("public/rap", b"r", qos=1, retain=True)
sub.got(1)
tap.ok(sub.messages and sub.messages[0].retain, "retain-as-published keeps RETAIN on a live copy")
sub.close()
pub.close()

# --- 6. shared subscriptions and $ topics --------------------------------

a = Client("share-a")
b = Client("share-b")
a.connect()
b.connect()
a.subscribe("$share/g1/public/shared/#", qos=1)
b.subscribe("$share/g1/public/shared/#", qos=1)
pub = Client("share-pub")
pub.connect()
for i in range(20):
    pub.publish("public/shared/x", b"s%d" % i, qos=1)
a.wait(lambda: len(a.messages) + len(b.messages) >= 20)
time.sleep(0.3)
got = sorted([m.payload for m in a.messages + b.messages])
tap.ok(got == sorted(b"s%d" % i for i in range(20)) and a.messages and b.messages,
       "$share/g1: 20 messages split between two members (%d / %d), none twice"
       % (len(a.messages), len(b.messages)))
for x in (a, b, pub):
    x.close()

owner = Client("owner-1", username="owner", password=OWNER)
ack = owner.connect()
tap.ok(ack and reason_value(ack[1]) == 0, "a policy login (SAS token) connects", ack)
hashsub = Client("owner-2", username="owner", password=OWNER)
hashsub.connect()
hashsub.subscribe("#", qos=1)
dollarsub = Client("owner-3", username="owner", password=OWNER)
dollarsub.connect()
dollarsub.subscribe("$private/#", qos=1)
owner.publish("$private/x", b"dollar", qos=1)
dollarsub.got(1)
time.sleep(0.3)
tap.ok(dollarsub.messages and not any(m.topic.startswith("$") for m in hashsub.messages),
       "`#` does not match a `$` topic; `$private/#` does")

# topic aliases from the client (v5)
props = Properties(PacketTypes.PUBLISH)
props.TopicAlias = 3
hashsub.messages.clear()
owner.publish("public/alias/one", b"a1", qos=1, props=props)
info = owner.c.publish("", b"a2", qos=1, properties=props)
owner.wait(lambda: info.mid in owner.acks)
hashsub.got(2)
tap.eq([(m.topic, m.payload) for m in hashsub.messages[:2]],
       [("public/alias/one", b"a1"), ("public/alias/one", b"a2")],
       "a topic alias set by the publisher resolves to its topic")

# take-over
t1 = Client("same-id", username="owner", password=OWNER)
t1.connect()
t2 = Client("same-id", username="owner", password=OWNER)
t2.connect()
tap.ok(t1.wait(lambda: t1.disconnect_rc is not None) and reason_value(t1.disconnect_rc) in (0x8E, 142, 7),
       "a second connection with the same client id takes over (the first gets DISCONNECT "
       "0x8E)", t1.disconnect_rc)
for x in (t1, t2, owner, hashsub, dollarsub):
    x.close()

# --- 7. [mqtt-map.*]: publishes land in the stream -----------------------

r = mosquitto_pub(["-V", "mqttv5", "-q", "1", "-t", "sensors/room1", "-m", "21.5",
                   "-D", "publish", "user-property", "unit", "C"])
tap.ok(r.returncode == 0, "QoS 1 PUBLISH to a mapped topic is acknowledged", r.stderr)
found = None
for part in range(2):
    status, _, body = st.http_request(https(), "GET", "/sensors/partitions/%d/messages"
                                      "?from=0&limit=100" % part,
                                      headers={"Authorization": OWNER})
    if status == 200:
        for msg in json.loads(body):
            if msg.get("key") == "sensors/room1":
                found = msg
props_of = (found or {}).get("properties") or (found or {}).get("headers") or {}
tap.ok(found is not None and props_of.get("mqtt-topic") == "sensors/room1"
       and props_of.get("unit") == "C",
       "the mapped publish reads back over HTTPS with key = topic, mqtt-topic and the user "
       "property", found)

# --- 7b. a stream bridged out: records sent over HTTPS reach MQTT subscribers

cmd_sub = Client("cmd-sub")
cmd_sub.connect()
cmd_sub.subscribe("public/cmd/#", qos=1)
time.sleep(0.5)
batch = [{"Body": "open valve %d" % i, "UserProperties": {"sender": "ops"},
          "BrokerProperties": {"PartitionKey": "valve%d" % i}} for i in range(4)]
status, _, _ = st.http_request(https(), "POST", "/commands/messages", body=json.dumps(batch),
                               headers={"Authorization": OWNER,
                                        "Content-Type": "application/vnd.microsoft.servicebus.json"})
tap.eq(status, 201, "4 records sent to stream 'commands' over HTTPS")
cmd_sub.got(4)
time.sleep(0.3)
got = sorted((m.topic, m.payload, dict(m.properties.UserProperty).get("sender"))
             for m in cmd_sub.messages)
tap.eq(got, sorted(("public/cmd/valve%d" % i, b"open valve %d" % i, "ops") for i in range(4)),
       "[mqtt-map.cmds] out: each record reaches MQTT on public/cmd/{key} with its properties")
cmd_sub.close()

loop_sub = Client("loop-sub")
loop_sub.connect()
loop_sub.subscribe("public/loop/#", qos=1)
mosquitto_pub(["-q", "1", "-t", "public/loop/a", "-m", "once"])
loop_sub.got(1)
time.sleep(1.0)
tap.eq([(m.topic, m.payload) for m in loop_sub.messages], [("public/loop/a", b"once")],
       "a `both` map does not send an MQTT publish back out as a second copy (no loop)")
loop_sub.close()

# --- 8. back-pressure: a subscriber that stops reading loses nothing ------


def mqtt_str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def varint(n):
    out = b""
    while True:
        d = n % 128
        n //= 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


_pending = {}


def read_packet(sock, timeout=10):
    """One whole packet, fixed header included, or None (reads in big
    chunks; what is left over waits for the next call)."""
    buf = _pending.get(sock, b"")
    sock.settimeout(timeout)
    try:
        while True:
            if len(buf) >= 2:
                i, mult, length, complete = 1, 1, 0, False
                while i < len(buf) and i <= 4:
                    length += (buf[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not buf[i - 1] & 0x80:
                        complete = True
                        break
                if complete and len(buf) >= i + length:
                    _pending[sock] = buf[i + length:]
                    return buf[:i + length]
            chunk = sock.recv(262144)
            if not chunk:
                return None
            buf += chunk
    except (socket.timeout, OSError):
        _pending[sock] = buf
        return None


def packet_body(p):
    i = 1
    while p[i] & 0x80:
        i += 1
    return p[i + 1:]


slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# A modest window, set before connecting: the kernel's buffers must not
# hide the stall, and a tiny one would make TCP itself crawl.
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
slow.connect(addr())
slow.sendall(packet(0x10, mqtt_str("MQTT") + b"\x04\x02\x00\x3c" + mqtt_str("slow-sub")))
read_packet(slow)
slow.sendall(packet(0x82, b"\x00\x01" + mqtt_str("public/flood") + b"\x01"))
read_packet(slow)
N = 3000
payload = b"x" * 8000
pub = Client("flood-pub")
pub.connect()
infos = [pub.c.publish("public/flood", payload + b"%05d" % i, qos=1) for i in range(N)]
pub.wait(lambda: sum(1 for i in infos if i.is_published()) == N, timeout=5)
acked_while_stalled = sum(1 for i in infos if i.is_published())
tap.ok(acked_while_stalled < N,
       "a subscriber that stops reading holds the publisher back (%d of %d acknowledged)"
       % (acked_while_stalled, N))
status, _, metrics = st.http_request(https(), "GET", "/metrics",
                                     headers={"Authorization": OWNER})
tap.ok(b"sluice_mqtt_backpressure_total{transport=\"mqtt\"}" in metrics
       and b"sluice_mqtt_backpressure_total{transport=\"mqtt\"} 0\n" not in metrics,
       "/metrics counts the back-pressure")
seen = []
acked = set()
deadline = time.monotonic() + 60
while len(seen) < N and time.monotonic() < deadline:
    p = read_packet(slow, 10)
    if p is None:
        break
    if (p[0] & 0xF0) == 0x30:
        body = packet_body(p)
        tlen = struct.unpack(">H", body[:2])[0]
        pid = body[2 + tlen:4 + tlen]
        seen.append(body[4 + tlen:])
        slow.sendall(b"\x40\x02" + pid)
pub.wait(lambda: sum(1 for i in infos if i.is_published()) == N, timeout=30)
tap.ok(len(seen) == N and seen == [payload + b"%05d" % i for i in range(N)],
       "once it reads again it gets all %d messages, in order (%d)" % (N, len(seen)))
tap.ok(all(i.is_published() for i in infos), "and every publish was acknowledged")
slow.close()
pub.close()

# --- 9. persistent session across a sluiced restart ----------------------

ps = Client("persist-1", clean=False, expiry=3600)
ack = ps.connect()
tap.ok(ack and ack[0] == 0, "a new persistent session: session present 0", ack)
ps.subscribe("public/persist/#", qos=1)
ps.close()
pub = Client("persist-pub")
pub.connect()
for i in range(5):
    pub.publish("public/persist/x", b"p%d" % i, qos=1)
pub.close()
mosquitto_pub(["-q", "1", "-r", "-t", "public/persist/retained", "-m", "r-kept"])


# Exactly once across a restart: a persistent session's QoS 2 PUBLISH whose
# PUBREC came but whose PUBREL did not (the client went away) is resent after
# the restart: it must be acknowledged again, not stored twice, and its PUBREL
# must be known. Raw packets: paho keeps no state across our restart.
def q2_connect():
    s = socket.create_connection(addr())
    props = b"\x11" + struct.pack(">I", 3600)          # session expiry 3600 s
    body = mqtt_str("MQTT") + b"\x05\x00\x00\x3c" + varint(len(props)) + props \
        + mqtt_str("q2-in")
    s.sendall(packet(0x10, body))
    return s, read_packet(s)


def q2_publish(s, dup):
    s.sendall(packet(0x3c if dup else 0x34,
                     mqtt_str("sensors/q2-once") + struct.pack(">H", 9) + b"\x00" + b"once"))
    return read_packet(s)


def q2_stored():
    n = 0
    for part in range(2):
        status, _, body = st.http_request(https(), "GET", "/sensors/partitions/%d/messages"
                                          "?from=0&limit=1000" % part,
                                          headers={"Authorization": OWNER})
        if status == 200:
            n += sum(1 for m in json.loads(body) if m.get("key") == "sensors/q2-once")
    return n


q2, ack = q2_connect()
rec = q2_publish(q2, False)
tap.ok(ack is not None and ack[0] == 0x20 and rec is not None and rec[0] == 0x50
       and rec[2:4] == b"\x00\x09" and (len(rec) == 4 or rec[4] == 0),
       "a persistent session's QoS 2 PUBLISH gets PUBREC 0 (no PUBREL sent yet)", (ack, rec))
q2.close()
hub.stop()
hub.start()
q2, ack = q2_connect()
rec = q2_publish(q2, True)
q2.sendall(packet(0x62, struct.pack(">H", 9)))
comp = read_packet(q2)
tap.ok(ack is not None and ack[2] & 1 and rec is not None and rec[0] == 0x50
       and comp == b"\x70\x02\x00\x09",
       "after the restart the resent PUBLISH gets PUBREC and its PUBREL PUBCOMP 0 (the packet "
       "id was kept)", (ack, rec, comp))
q2.close()
tap.eq(q2_stored(), 1, "and the message was stored once")
ps = Client("persist-1", clean=False, expiry=3600)
ack = ps.connect()
tap.ok(ack and ack[0] == 1, "after the restart the session is present", ack)
ps.got(5)
time.sleep(0.3)
tap.eq([m.payload for m in ps.messages[:5]], [b"p%d" % i for i in range(5)],
       "the 5 messages queued while it was away survive the restart, in order")
ps.messages.clear()
pub = Client("persist-pub")
pub.connect()
pub.publish("public/persist/y", b"live", qos=1)
tap.ok(ps.got(1) and ps.messages[0].payload == b"live",
       "its subscription survived the restart too")
pub.close()
ps.close()
sub = mosquitto_sub(["-q", "1", "-t", "public/persist/retained"], 1)
out, _ = sub.communicate(timeout=30)
tap.eq(out.strip(), "public/persist/retained r-kept", "a retained message survives the restart")

# 3.1.1 persistent session with mosquitto_sub -c
sub = mosquitto_sub(["-V", "mqttv311", "-q", "1", "-c", "-i", "m311", "-t", "public/m311"], 1,
                    timeout=2)
sub.communicate(timeout=30)
mosquitto_pub(["-q", "1", "-t", "public/m311", "-m", "while-away"])
sub = mosquitto_sub(["-V", "mqttv311", "-q", "1", "-c", "-i", "m311", "-t", "public/m311"], 1)
out, _ = sub.communicate(timeout=30)
tap.eq(out.strip(), "public/m311 while-away",
       "3.1.1 clean session 0 (mosquitto_sub -c): a message sent while away is delivered")

# --- 10. AUTH: re-authentication with a fresh SAS token -------------------
# No packaged client sends AUTH: this raw-socket client is ours.

status, _, body = st.http_request(https(), "PUT", "/devices/dev-auth",
                                  body=json.dumps({"deviceId": "dev-auth"}),
                                  headers={"Authorization": OWNER,
                                           "Content-Type": "application/json"})
key = json.loads(body)["authentication"]["symmetricKey"]["primaryKey"]


def token(expiry_s):
    return st.sas_token("%s/devices/dev-auth" % HOST, key, expiry=int(time.time()) + expiry_s)


def auth_props(tok):
    m = b"SAS"
    return (b"\x15" + struct.pack(">H", len(m)) + m
            + b"\x16" + struct.pack(">H", len(tok)) + tok.encode())


s = socket.create_connection(addr())
props = auth_props(token(3600))
user = "%s/dev-auth/?api-version=2021-04-12" % HOST
body = (mqtt_str("MQTT") + b"\x05\x82\x00\x3c" + varint(len(props)) + props
        + mqtt_str("dev-auth") + mqtt_str(user))
s.sendall(packet(0x10, body))
ack = read_packet(s)
tap.ok(ack is not None and ack[0] == 0x20 and packet_body(ack)[1] == 0 and b"SAS" in ack,
       "CONNECT with Authentication Method SAS and the token as data: CONNACK 0", ack)
props = auth_props(token(7200))
s.sendall(packet(0xF0, b"\x19" + varint(len(props)) + props))
got = read_packet(s)
tap.ok(got is not None and got[0] == 0xF0 and packet_body(got)[0] == 0x00,
       "AUTH 0x19 with a fresh token: AUTH 0 back, still connected", got)
s.sendall(packet(0x30, mqtt_str("devices/dev-auth/messages/events/") + b"\x00" + b"after"))
s.sendall(b"\xc0\x00")
tap.eq(read_packet(s), b"\xd0\x00", "the connection works after re-authentication")
props = auth_props(st.sas_token("%s/devices/dev-auth" % HOST, st.new_key()))
s.sendall(packet(0xF0, b"\x19" + varint(len(props)) + props))
got = read_packet(s)
tap.ok(got is not None and got[0] == 0xE0 and packet_body(got)[0] == 0x87,
       "AUTH with a bad token: DISCONNECT 0x87", got)
s.close()

hub.stop()
tap.done()
