#!/usr/bin/python3
# transport-mqtt against a real sluiced (storage-file, auth-key,
# transport-https for the registry and the read-back): mosquitto_pub in
# MQTT 3.1.1 and 5, QoS 0 and 1, plain and TLS, with the IoT Hub username
# and a device SAS token, telemetry with a property bag read back over the
# HTTPS read API; a raw-socket client for the exact CONNACK, PUBACK and
# SUBACK bytes, another device's topic, malformed packets from the recorded
# vectors (while another client keeps working), the keepalive timeout and
# the C2D subscription refused. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4

if not shutil.which("mosquitto_pub"):
    tap.bail_out("mosquitto_pub not found: install the Debian package mosquitto-clients "
                 "(apt-get install mosquitto-clients)")
for plugin in ("transport-https", "transport-mqtt"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                 "DeviceConnect", "Send", "Listen", "Manage"]}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
mqtt_section = ("transport.mqtt", {"plugin": "mqtt", "listen": "127.0.0.1:0",
                                   "tls-listen": "127.0.0.1:0", "max-packet": "64KiB"})
# max-message 4KiB: a larger record is an append error the client must hear of.
streams = {"events": {"partitions": PARTITIONS, "durability": "batch", "max-message": "4KiB"}}
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=[mqtt_section]),
             workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
https = hub.address("https", "plain")
mqtt = hub.address("mqtt", "plain")
mqtts = hub.address("mqtt", "tls")
tap.ok(mqtt[1] > 0 and mqtts[1] > 0 and mqtt[1] != mqtts[1],
       "sluiced reports MQTT plain %s:%d and TLS %s:%d" % (mqtt + mqtts))
CA = os.path.join(data_dir, "tls", "dev-cert.pem")
OWNER = st.sas_token(HOST, owner_key, skn="owner")


def call(method, path, body=None):
    h = {"Authorization": OWNER}
    if isinstance(body, dict):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    return st.http_request(https, method, path, body=body, headers=h)


def create_device(device_id):
    status, _, data = call("PUT", "/devices/" + device_id, {"deviceId": device_id})
    if status != 200:
        tap.bail_out("PUT /devices/%s: %d %r" % (device_id, status, data))
    return json.loads(data)["authentication"]["symmetricKey"]["primaryKey"]


keys = {d: create_device(d) for d in ("dev1", "dev2")}
TOKEN = {d: st.sas_token("%s/devices/%s" % (HOST, d), k) for d, k in keys.items()}


def username(device_id):
    return "%s/%s/?api-version=2021-04-12" % (HOST, device_id)


def read_all(device_id):
    p = st.partition_for_key(device_id, PARTITIONS)
    out, offset = [], 0
    while True:
        status, _, data = call("GET", "/events/partitions/%d/messages?from=%d&limit=1000"
                               % (p, offset))
        recs = json.loads(data) if status == 200 else []
        if not recs:
            return [r for r in out if r.get("key") == device_id]
        out += recs
        offset = recs[-1]["offset"] + 1


def wait_records(device_id, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        recs = read_all(device_id)
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.05)


# --- mosquitto_pub: 3.1.1 and 5, QoS 0 and 1, plain and TLS ------------------------------

def mosquitto_pub(version, qos, topic, message, device="dev1", password=None, tls=False,
                  client_id=None):
    addr = mqtts if tls else mqtt
    cmd = ["mosquitto_pub", "-V", version, "-q", str(qos), "-t", topic, "-m", message,
           "-i", client_id or device, "-u", username(device),
           "-P", password if password is not None else TOKEN[device],
           "-p", str(addr[1])]
    if tls:
        cmd += ["-h", HOST, "--cafile", CA]
    else:
        cmd += ["-h", addr[0]]
    return subprocess.run(cmd, capture_output=True, timeout=30)


expected = []
for tls in (False, True):
    for version in ("mqttv311", "mqttv5"):
        for qos in (0, 1):
            name = "%s-q%d%s" % (version, qos, "-tls" if tls else "")
            bag = "%%24.mid=m-%s&%%24.ct=text%%2Fplain&temp=21.5&unit=C%%20deg&%%24.to=x" % name
            res = mosquitto_pub(version, qos, "devices/dev1/messages/events/" + bag,
                                "hello " + name, tls=tls)
            tap.ok(res.returncode == 0, "mosquitto_pub -V %s -q %d%s publishes telemetry"
                   % (version, qos, " over TLS" if tls else ""),
                   (res.returncode, res.stderr.decode(errors="replace")))
            expected.append(name)

recs = wait_records("dev1", len(expected))
tap.eq(sorted(r.get("body") for r in recs), sorted("hello " + n for n in expected),
       "every message reads back over HTTPS with its body, key = device id")
by_body = {r.get("body"): r for r in recs}
for name in ("mqttv311-q0", "mqttv5-q1-tls"):
    props = by_body.get("hello " + name, {}).get("properties", {})
    tap.ok(props.get("message-id") == "m-" + name and props.get("content-type") == "text/plain"
           and props.get("temp") == "21.5" and props.get("unit") == "C deg"
           and "$.to" not in props and "to" not in props,
           "%s: the property bag is record headers ($.mid, $.ct mapped, %%-escapes "
           "decoded, $.to dropped)" % name, props)
    tap.ok(props.get("iothub-connection-device-id") == "dev1"
           and props.get("mqtt-topic", "").startswith("devices/dev1/messages/events/")
           and json.loads(props.get("iothub-connection-auth-method", "{}")).get("type") == "sas",
           "%s: iothub-connection-device-id, -auth-method and mqtt-topic are set" % name, props)

res = mosquitto_pub("mqttv311", 1, "devices/dev1/messages/events/", "x",
                    password=TOKEN["dev2"])
tap.ok(res.returncode != 0, "mosquitto_pub 3.1.1 with another device's token is refused",
       res.stderr)
res = mosquitto_pub("mqttv5", 1, "devices/dev1/messages/events/", "x",
                    password=st.sas_token("%s/devices/dev1" % HOST, st.new_key()))
tap.ok(res.returncode != 0, "mosquitto_pub 5 with a wrong key is refused", res.stderr)


# --- a raw client ---------------------------------------------------------------------------

def varint(n):
    out = b""
    while True:
        b = n % 128
        n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_packet(v5, client_id, user=None, password=None, keepalive=30, clean=True,
                   props=b""):
    flags = (0x02 if clean else 0) | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    body = mqtt_str("MQTT") + bytes([5 if v5 else 4, flags]) + keepalive.to_bytes(2, "big")
    if v5:
        body += varint(len(props)) + props
    body += mqtt_str(client_id)
    if user is not None:
        body += mqtt_str(user)
    if password is not None:
        body += mqtt_str(password)
    return packet(0x10, body)


def publish_packet(v5, topic, payload, qos=0, pid=1):
    body = mqtt_str(topic)
    if qos:
        body += pid.to_bytes(2, "big")
    if v5:
        body += b"\x00"
    return packet(0x30 | (qos << 1), body + payload)


def subscribe_packet(v5, topic, pid=1):
    body = pid.to_bytes(2, "big") + (b"\x00" if v5 else b"") + mqtt_str(topic) + b"\x01"
    return packet(0x82, body)


class Raw:
    def __init__(self, addr=None):
        self.sock = socket.create_connection(addr or mqtt, timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def packet(self, timeout=5.0):
        """The next whole packet's bytes, or None when the server closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf) and i <= 4:
                    n += (self.buf[i] & 0x7F) * mult
                    mult *= 128
                    if not self.buf[i] & 0x80:
                        break
                    i += 1
                if i < len(self.buf) and len(self.buf) >= i + 1 + n:
                    p, self.buf = self.buf[:i + 1 + n], self.buf[i + 1 + n:]
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no packet within %.1f s" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def closed(self, timeout=5.0):
        """True when the server closes (no more packets) within `timeout`."""
        try:
            while True:
                if self.packet(timeout) is None:
                    return True
        except (TimeoutError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


def device_client(v5, device="dev1", keepalive=30):
    c = Raw()
    c.send(connect_packet(v5, device, username(device), TOKEN[device], keepalive))
    ack = c.packet()
    if ack is None or ack[0] != 0x20 or ack[3] != 0:
        tap.diag("CONNACK %r" % ack)
    return c, ack


# CONNACK bytes, exactly.
for v5, want in ((False, b"\x20\x02\x00\x04"), (True, b"\x20\x03\x00\x86\x00")):
    c = Raw()
    c.send(connect_packet(v5, "dev1", username("dev1"),
                          st.sas_token("%s/devices/dev1" % HOST, st.new_key())))
    got = c.packet()
    tap.ok(got == want and c.closed(), "raw %s: a wrong token gets CONNACK %s and close"
           % ("v5" if v5 else "3.1.1", want.hex()), got)
    c.close()
c, ack = device_client(False)
tap.eq(ack, b"\x20\x02\x00\x00", "raw 3.1.1: the device token gets CONNACK 0 (session present 0)")
c.send(b"\xc0\x00")
tap.eq(c.packet(), b"\xd0\x00", "PINGREQ answers PINGRESP")
c.send(publish_packet(False, "devices/dev1/messages/events/a=1", b"raw-311", 1, 7))
tap.eq(c.packet(), b"\x40\x02\x00\x07", "3.1.1 QoS 1 telemetry: PUBACK for packet id 7")
c.send(subscribe_packet(False, "devices/dev1/messages/devicebound/#", 3))
tap.eq(c.packet(), b"\x90\x03\x00\x03\x80", "3.1.1 SUBSCRIBE to the C2D topic: SUBACK 0x80")
c.send(b"\xa2\x07\x00\x04" + mqtt_str("a/b"))
tap.eq(c.packet(), b"\xb0\x02\x00\x04", "UNSUBSCRIBE answers UNSUBACK")
c.send(publish_packet(False, "devices/dev2/messages/events/", b"spoof", 1, 8))
tap.ok(c.closed(), "3.1.1: PUBLISH to another device's topic closes the connection")
c.close()

# Persistent sessions: the first CONNECT finds none, the second resumes it.
# Connections above used the client id `dev1` and closed their sockets only:
# a clean CONNECT with a DISCONNECT ends whatever session is left of them.
c = Raw()
c.send(connect_packet(False, "dev1", username("dev1"), TOKEN["dev1"], clean=True))
c.packet()
c.send(b"\xe0\x00")
c.closed()
c.close()
for v5 in (False, True):
    for attempt in (0, 1):
        c = Raw()
        c.send(connect_packet(v5, "dev1", username("dev1"), TOKEN["dev1"], clean=False,
                              props=b"\x11\x00\x00\x0e\x10" if v5 else b""))
        got = c.packet() or b""
        tap.ok(got[:4] == bytes([0x20, len(got) - 2, attempt, 0])
               and (not v5 or b"\x11\x00\x00" not in got),
               "%s: clean session 0%s is accepted with session present %d"
               % ("v5" if v5 else "3.1.1", " and an expiry of 3600 s (kept as asked)" if v5 else "",
                  attempt), got)
        c.close()
    # A clean CONNECT ends the stored session.
    c = Raw()
    c.send(connect_packet(v5, "dev1", username("dev1"), TOKEN["dev1"], clean=True))
    got = c.packet() or b""
    tap.ok(got[:4] == bytes([0x20, len(got) - 2, 0, 0]),
           "%s: clean session 1 discards it (session present 0)" % ("v5" if v5 else "3.1.1"), got)
    # Its own (clean) session ends with it: wait for that before the next round.
    c.send(b"\xe0\x00")
    c.closed()
    c.close()
c, ack = device_client(True, keepalive=0)
tap.ok(ack is not None and b"\x13\x04\xb0" in ack,
       "v5 keepalive 0: CONNACK says Server Keep Alive 1200 (keepalive-max)", ack)
c.close()
c, ack = device_client(True)
tap.ok(ack is not None and ack[:4] == bytes([0x20, len(ack) - 2, 0, 0]),
       "raw v5: the device token gets CONNACK 0 with properties", ack)
c.send(publish_packet(True, "devices/dev1/messages/events/", b"raw-5", 1, 9))
tap.eq(c.packet(), b"\x40\x02\x00\x09", "v5 QoS 1 telemetry: PUBACK 0 (short form)")
c.send(publish_packet(True, "devices/dev2/messages/events/", b"spoof", 1, 10))
got = c.packet() or b""
tap.ok(got[:5] == b"\x40" + bytes([len(got) - 2]) + b"\x00\x0a\x87" and b"dev2" in got,
       "v5: QoS 1 to another device's topic gets PUBACK 0x87 with a reason string", got)
c.send(publish_packet(True, "sensors/room1", b"plain", 1, 11))
got = c.packet() or b""
tap.ok(got[2:5] == b"\x00\x0b\x87" and b"mqtt-acl" in got,
       "v5: a plain topic no [mqtt-acl.*] grants gets PUBACK 0x87 with a reason string", got)
c.send(publish_packet(True, "devices/dev1/messages/events/", b"q2", 2, 12))
got = c.packet() or b""
tap.eq(got, b"\x50\x02\x00\x0c", "v5: QoS 2 telemetry gets PUBREC 0 once appended")
c.send(b"\x62\x02\x00\x0c")
tap.eq(c.packet(), b"\x70\x02\x00\x0c", "v5: PUBREL gets PUBCOMP 0")
c.send(subscribe_packet(True, "devices/dev1/messages/devicebound/#", 13))
got = c.packet() or b""
tap.ok(got[0] == 0x90 and got[2:4] == b"\x00\x0d" and got[-1] == 0x83
       and b"cloud-to-device messages are not implemented yet" in got,
       "v5 SUBSCRIBE to the C2D topic: SUBACK 0x83 with a reason string", got)
c.send(b"\xe0\x00")
tap.ok(c.closed(), "DISCONNECT closes the connection")
c.close()

# An append error: v5 answers PUBACK 0x97 with the reason, 3.1.1 closes after
# the acknowledgements before it.
c, _ = device_client(True)
c.send(publish_packet(True, "devices/dev1/messages/events/", b"x" * 8192, 1, 14))
got = c.packet() or b""
tap.ok(got[0:1] == b"\x40" and got[2:5] == b"\x00\x0e\x97" and len(got) > 6,
       "v5: a record over the stream's max-message gets PUBACK 0x97 with a reason string", got)
c.send(publish_packet(True, "devices/dev1/messages/events/", b"after", 1, 15))
tap.eq(c.packet(), b"\x40\x02\x00\x0f", "v5: the connection goes on after it")
c.close()
c, _ = device_client(False)
c.send(publish_packet(False, "devices/dev1/messages/events/", b"first", 1, 20)
       + publish_packet(False, "devices/dev1/messages/events/", b"x" * 8192, 1, 21))
first = c.packet()
tap.ok(first == b"\x40\x02\x00\x14" and c.closed(),
       "3.1.1: the PUBACK before a failed append, then close (no PUBACK for it)", first)
c.close()
recs = wait_records("dev1", len(expected) + 4)
tap.ok({"raw-311", "raw-5", "after", "first"} <= {r.get("body") for r in recs}
       and not [r for r in read_all("dev2")],
       "raw telemetry is stored; nothing was stored for dev2", [r.get("body") for r in recs])

# --- a burst of QoS 1 beyond the in-flight bound: reading pauses, nothing is lost ----------

BURST = 3000
c, ack = device_client(False)
c.send(b"".join(publish_packet(False, "devices/dev1/messages/events/burst=1",
                               b"burst %d" % i, 1, i + 1) for i in range(BURST)))
acks = []
try:
    while len(acks) < BURST:
        p = c.packet(timeout=30)
        if p is None:
            break
        acks.append(p)
except (TimeoutError, socket.timeout):
    pass
tap.ok(acks == [b"\x40\x02" + (i + 1).to_bytes(2, "big") for i in range(BURST)],
       "%d QoS 1 PUBLISHes in one burst: every PUBACK, in order (got %d)"
       % (BURST, len(acks)))
c.close()
burst = [r for r in wait_records("dev1", 0) if r.get("properties", {}).get("burst") == "1"]
tap.eq(sorted(r["body"] for r in burst), sorted("burst %d" % i for i in range(BURST)),
       "and every one of them reads back")

# --- malformed input, while another client keeps working -----------------------------------

with open(os.path.join(st.vectors(), "mqtt",
                       "malformed", "cases.json")) as f:
    cases = {c["name"]: c for c in json.load(f)["cases"]}
bystander, _ = device_client(True, "dev2")
pre_connect = ["bad-remaining-length", "connect-protocol-level-7", "publish-before-connect",
               "connect-reserved-flag", "v5-connect-duplicate-property"]
for name in pre_connect:
    case = cases[name]
    c = Raw()
    c.send(bytes.fromhex(case["sent_hex"]))
    got = c.packet()
    want = bytes.fromhex(case["received_hex"]) or None
    tap.ok(got == want and (got is None or c.closed()),
           "malformed %s: %s and close" % (name, want.hex() if want else "no answer"), got)
    c.close()
# After our own CONNECT: the same bytes that followed mosquitto's.
connect311 = bytes.fromhex("100f00044d5154540402001e00036e6567")
connect5 = bytes.fromhex("101000044d5154540502001e0000036e6567")
for name, v5, head in (("second-connect", False, connect311), ("publish-qos3", False, connect311),
                       ("subscribe-bad-flags", False, connect311),
                       ("v5-subscribe-qos3", True, connect5)):
    rest = bytes.fromhex(cases[name]["sent_hex"])[len(head):]
    c, ack = device_client(v5)
    c.send(rest)
    got = c.packet()
    want = b"\xe0\x01\x81" if v5 else None
    if name == "second-connect":
        want = None
    tap.ok(got == want and (got is None or c.closed()),
           "after CONNECT, malformed %s: %s" % (name, want.hex() + " and close" if want
                                                else "close"), got)
    c.close()
bystander.send(publish_packet(True, "devices/dev2/messages/events/", b"still here", 1, 1))
tap.eq(bystander.packet(), b"\x40\x02\x00\x01",
       "a client connected meanwhile still publishes (PUBACK)")

# --- keepalive -------------------------------------------------------------------------------

for v5 in (False, True):
    c, _ = device_client(v5, keepalive=1)
    start = time.monotonic()
    got = c.packet(timeout=6)
    took = time.monotonic() - start
    if v5:
        ok = got == b"\xe0" + bytes([len(got) - 2]) + b"\x8d" + got[3:] and c.closed()
    else:
        ok = got is None
    tap.ok(ok and 1.4 <= took <= 4, "%s: keepalive 1 s, idle: closed after %.2f s%s"
           % ("v5" if v5 else "3.1.1", took, " with DISCONNECT 0x8D" if v5 else ""), got)
    c.close()
bystander.send(b"\xc0\x00")
tap.eq(bystander.packet(), b"\xd0\x00", "the other client still gets PINGRESP")

# --- modules: ClientId {id}/{module}, the device's token, the module's telemetry topic --------

cmd = ["mosquitto_pub", "-V", "mqttv311", "-q", "1", "-h", mqtt[0], "-p", str(mqtt[1]),
       "-i", "dev1/filter", "-u", "%s/dev1/filter/?api-version=2021-04-12" % HOST,
       "-P", TOKEN["dev1"], "-t", "devices/dev1/modules/filter/messages/events/stage=2",
       "-m", "from-module"]
res = subprocess.run(cmd, capture_output=True, timeout=30)
tap.ok(res.returncode == 0, "a module login (dev1/filter) publishes to its module topic",
       res.stderr)
recs = [r for r in wait_records("dev1", 1) if r.get("value", r.get("body")) == "from-module"
        or "from-module" in json.dumps(r)]
props = recs[0].get("properties", {}) if recs else {}
tap.ok(props.get("iothub-connection-module-id") == "filter" and props.get("stage") == "2"
       and props.get("iothub-connection-device-id") == "dev1",
       "module telemetry reads back with iothub-connection-module-id and its property bag", recs)
cmd[cmd.index("-t") + 1] = "devices/dev1/messages/events/"
res = subprocess.run(cmd + ["-V", "mqttv5"], capture_output=True, timeout=30)
tap.ok(res.returncode != 0 or b"not authorized" in res.stderr.lower(),
       "a module may not publish as its device", res.stderr)

# --- revocation: disabling the device closes its connection ----------------------------------

status, _, data = call("GET", "/devices/dev2")
dev2 = json.loads(data)
dev2["status"] = "disabled"
c, _ = device_client(True, "dev2")
status, _, _ = call("PUT", "/devices/dev2", dev2)
got = c.packet(timeout=5)
tap.ok(status == 200 and got is not None and got[0] == 0xe0 and got[2] == 0x87 and c.closed(),
       "disabling the device sends DISCONNECT 0x87 and closes", got)
c.close()
bystander.close()

code = hub.stop()
tap.eq(code, 0, "sluiced exits 0 on SIGTERM")
tap.done()
