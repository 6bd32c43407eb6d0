#!/usr/bin/python3
# transport-https against a real sluiced (storage-file, auth-key), driven
# with curl and Python's http.client: the registry (create, read, list,
# If-Match etags, disable, delete), device telemetry with properties read
# back through the read API (key, properties, enqueuedTime, UTF-8 and base64
# bodies), stream sends (single, batch, partition), the stream and offsets
# APIs, long polls, every error status with its JSON body, bodies over
# max-body (Content-Length and chunked, refused before the body is read),
# TLS with the generated certificate, /healthz and /metrics. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
HOST = "localhost"
PARTITIONS = 4
MAX_BODY = 64 * 1024

if not shutil.which("curl"):
    tap.bail_out("curl not found: install the Debian package curl (apt-get install curl)")
if not os.path.exists(os.path.join(st.builddir(), "plugins", "transport-https",
                                   "transport-https.la")):
    tap.bail_out("plugins/transport-https/transport-https.la is not built")

keys = {name: st.new_key() for name in ("owner", "sender", "reader", "registry")}
policies = {
    "owner": {"primary-key": keys["owner"],
              "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect",
                         "Send", "Listen", "Manage"]},
    "sender": {"primary-key": keys["sender"], "rights": ["Send"]},
    "reader": {"primary-key": keys["reader"], "rights": ["Listen"]},
    "registry": {"primary-key": keys["registry"], "rights": ["RegistryRead"]},
}
streams = {
    "events": {"partitions": PARTITIONS, "durability": "batch"},
    "orders": {"partitions": 2, "durability": "batch"},
}
work = st.tempdir()
data_dir = os.path.join(work, "data")
hub = st.Hub(st.https_hub_config(data_dir, policies, streams,
                                 https={"max-body": "%dKiB" % (MAX_BODY // 1024),
                                        "read-limit": 50, "max-wait": "3s"}),
             workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
plain = hub.address("https", "plain")
tls = hub.address("https", "tls")
tap.ok(plain[1] > 0 and tls[1] > 0 and plain[1] != tls[1],
       "sluiced reports plain %s:%d and tls %s:%d" % (plain + tls))
CA = os.path.join(data_dir, "tls", "dev-cert.pem")


def policy_token(name, expiry=None, resource=HOST):
    return st.sas_token(resource, keys[name], skn=name, expiry=expiry)


OWNER = policy_token("owner")


def call(method, path, body=None, token=OWNER, headers=None, address=None, cafile=None):
    h = {}
    if token:
        h["Authorization"] = token
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    return st.http_request(address or plain, method, path, body=body, headers=h, cafile=cafile)


def as_json(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def error_shape(status, headers, data, want, iothub, code=None):
    """The status, a JSON error body in the shape the path calls for, and the
    error code when given."""
    body = as_json(data)
    if status != want or not isinstance(body, dict) or "Message" not in body:
        return False
    if iothub:
        ok = body["Message"].startswith("ErrorCode:") and "ExceptionMessage" in body
        if code:
            ok = ok and body["Message"].startswith("ErrorCode:%s;" % code)
            ok = ok and headers.get("iothub-errorcode") == code
        return ok
    return "ErrorCode" in body and (code is None or body["ErrorCode"] == code)


def check_error(result, want, iothub, desc, code=None):
    status, headers, data = result
    tap.ok(error_shape(status, headers, data, want, iothub, code), desc,
           "status %d (want %d), body %r" % (status, want, data[:300]))


def curl(*args, data_file=None):
    """curl -s; (http status, body bytes)."""
    out = os.path.join(work, "curl-out")
    cmd = ["curl", "-s", "-S", "-o", out, "-w", "%{http_code}"] + list(args)
    res = subprocess.run(cmd, capture_output=True, timeout=60)
    try:
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    except OSError:
        body = b""
    code = int(res.stdout.decode() or "0") if res.stdout.decode().isdigit() else 0
    return code, body, res


def read_partition(stream, p, query="", token=OWNER, **kw):
    status, headers, data = call("GET", "/%s/partitions/%d/messages%s" % (stream, p, query),
                                 token=token, **kw)
    return status, headers, as_json(data)


# --- health and routing ---------------------------------------------------------------

code, body, _ = curl("http://%s:%d/healthz" % plain)
tap.ok(code == 200 and body.strip() == b"ok", "/healthz answers 200 ok (curl)", (code, body))
status, headers, data = call("GET", "/events?api-version=2021-04-12")
tap.ok(status == 200 and as_json(data)["name"] == "events"
       and [p["id"] for p in as_json(data)["partitions"]] == list(range(PARTITIONS)),
       "GET /events lists its partitions (api-version accepted and ignored)", data)
check_error(call("GET", "/nosuchstream"), 404, False, "unknown stream: 404 NotFound",
            "NotFound")
check_error(call("POST", "/nosuchstream/messages", body="x"), 404, False,
            "send to an unknown stream: 404")
check_error(call("GET", "/nosuchstream/partitions/0/messages"), 404, False,
            "read of an unknown stream: 404")
check_error(call("GET", "/events/partitions/%d/messages" % PARTITIONS), 404, False,
            "read of a partition past the last: 404")
check_error(call("GET", "/devices/d1/messages/deviceBound", token=None), 501, True,
            "C2D receive is a later feature: 501 in IoT Hub's shape", "NotImplemented")
check_error(call("GET", "/twins/d1"), 501, True, "twins are a later feature: 501")
check_error(call("POST", "/devices/d1/files", body="{}"), 501, True,
            "file upload is a later feature: 501")
for reserved in ("jobs", "messages", "files", "twins", "healthz", "metrics", "devices"):
    status, _, data = call("POST", "/%s/messages" % reserved, body="x")
    tap.ok(status in (404, 405, 501), "reserved name /%s is never a stream (%d)"
           % (reserved, status), data)
status, headers, data = call("DELETE", "/events")
tap.ok(status == 405 and headers.get("allow") == "GET" and as_json(data),
       "DELETE /events: 405 with Allow: GET", (status, headers, data))
status, _, data = call("GET", "/EVENTS/Partitions/0/Messages?from=0")
tap.ok(status == 404, "stream names keep their case (/EVENTS is another stream)", data)
status, _, data = call("GET", "/events/Partitions/0/MESSAGES?from=0")
tap.ok(status == 200 and isinstance(as_json(data), list),
       "fixed path segments match case-insensitively", data)

# --- registry ---------------------------------------------------------------------------

status, headers, data = call("PUT", "/devices/dev1", body={"deviceId": "dev1"})
dev1 = as_json(data) or {}
sym = dev1.get("authentication", {}).get("symmetricKey", {})
tap.ok(status == 200 and dev1.get("deviceId") == "dev1" and sym.get("primaryKey")
       and sym.get("secondaryKey") and dev1.get("status") == "enabled",
       "PUT /devices/dev1 creates it with generated keys (200)", data)
tap.ok(headers.get("etag") == '"%s"' % dev1.get("etag"), "PUT answers the quoted ETag",
       headers)
status, headers, data = call("GET", "/devices/dev1", token=policy_token("registry"))
tap.ok(status == 200 and as_json(data)["etag"] == dev1["etag"],
       "GET /devices/dev1 with RegistryRead", data)
check_error(call("GET", "/devices/ghost"), 404, True, "unknown device: 404 DeviceNotFound",
            "DeviceNotFound")
check_error(call("PUT", "/devices/dev9", body={"deviceId": "dev9"},
                 token=policy_token("registry")), 403, True,
            "PUT without RegistryWrite: 403")
check_error(call("PUT", "/devices/dev9", body="{not json"), 400, True,
            "malformed device JSON: 400", "ArgumentInvalid")
check_error(call("PUT", "/devices/dev9", body={"deviceId": "other"}), 400, True,
            "deviceId of the body differs from the path: 400")
check_error(call("PUT", "/devices/dev9", body={
    "deviceId": "dev9", "authentication": {"type": "sas", "symmetricKey": {
        "primaryKey": st.new_key()}}}), 400, True, "one key without the other: 400")
check_error(call("PUT", "/devices/bad%20id", body={}), 400, True, "invalid device id: 400")
check_error(call("PUT", "/devices/dev1", body=dict(dev1, statusReason="x"),
                 headers={"If-Match": '"not-the-etag"'}), 412, True,
            "PUT with a stale If-Match: 412 PreconditionFailed", "PreconditionFailed")
check_error(call("DELETE", "/devices/dev1", headers={"If-Match": '"not-the-etag"'}), 412,
            True, "DELETE with a stale If-Match: 412")
status, headers, data = call("PUT", "/devices/dev2", body={"deviceId": "dev2"})
dev2 = as_json(data) or {}
status, _, data = call("GET", "/devices?top=1000")
listed = as_json(data) or []
tap.ok(status == 200 and [d["deviceId"] for d in listed] == ["dev1", "dev2"],
       "GET /devices lists both devices", data)
check_error(call("GET", "/devices", token=policy_token("sender")), 403, True,
            "GET /devices without RegistryRead: 403")

DEV1 = st.sas_token("%s/devices/dev1" % HOST, sym["primaryKey"])
DEV2 = st.sas_token("%s/devices/dev2" % HOST,
                    dev2["authentication"]["symmetricKey"]["primaryKey"])

# --- telemetry and the read API -----------------------------------------------------------

p1 = st.partition_for_key("dev1", PARTITIONS)
first_next = as_json(call("GET", "/events")[2])["partitions"][p1]["next"]
code, body, res = curl("-X", "POST", "http://%s:%d/devices/dev1/messages/events?api-version=2021-04-12" % plain,
                       "-H", "Authorization: " + DEV1, "-H", "iothub-app-temperature: 21.5",
                       "-H", "iothub-app-Unit: C", "-H", "iothub-messageid: msg-1",
                       "-H", "iothub-correlationid: corr-1",
                       "-H", "iothub-contenttype: application/json",
                       "-H", "Content-Type: text/plain",
                       "-H", "iothub-app-iothub-connection-device-id: spoofed",
                       "--data-binary", '{"t": 21.5, "s": "caf\u00e9"}')
tap.ok(code == 204 and body == b"", "curl posts telemetry as dev1: 204", (code, body, res.stderr))
binary = bytes([0, 1, 2, 255, 254, 10])
status, _, data = call("POST", "/devices/dev1/messages/events", body=binary, token=DEV1,
                       headers={"Content-Type": "application/octet-stream"})
tap.eq(status, 204, "binary telemetry over http.client: 204")
status, _, data = call("POST", "/devices/dev1/messages/events", body=b"", token=DEV1)
tap.eq(status, 204, "empty telemetry body: 204")
status, headers, recs = read_partition("events", p1, "?from=%d" % first_next)
tap.ok(status == 200 and isinstance(recs, list) and len(recs) == 3,
       "three records in dev1's partition %d" % p1, recs)
recs = recs or [{}, {}, {}]
r = recs[0]
tap.ok(r.get("offset") == first_next and isinstance(r.get("offset"), int),
       "offset is a JSON integer at the partition's next offset", r)
tap.ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.get("enqueuedTime", "")),
       "enqueuedTime is ISO 8601 UTC with milliseconds", r.get("enqueuedTime"))
tap.eq(r.get("key"), "dev1", "the record key is the device id")
props = r.get("properties", {})
tap.ok(props.get("temperature") == "21.5" and props.get("Unit") == "C",
       "iothub-app-* headers are properties without the prefix", props)
tap.ok(props.get("message-id") == "msg-1" and props.get("correlation-id") == "corr-1",
       "iothub-messageid / -correlationid are message-id / correlation-id", props)
tap.eq(props.get("content-type"), "application/json",
       "iothub-contenttype wins over Content-Type as content-type")
tap.eq(props.get("iothub-connection-device-id"), "dev1",
       "iothub-connection-device-id is the authenticated device (not the spoofed property)")
auth_method = as_json(props.get("iothub-connection-auth-method", "")) or {}
tap.ok(auth_method.get("scope") == "device" and auth_method.get("type") == "sas",
       "iothub-connection-auth-method says a device SAS token", props)
tap.ok(r.get("body") == '{"t": 21.5, "s": "caf\u00e9"}' and "bodyEncoding" not in r,
       "a UTF-8 body reads back as a string", r)
tap.ok(recs[1].get("bodyEncoding") == "base64"
       and base64.b64decode(recs[1].get("body", "")) == binary,
       "a binary body reads back base64 with bodyEncoding", recs[1])
tap.ok(recs[1].get("properties", {}).get("content-type") == "application/octet-stream",
       "Content-Type alone is the content-type property", recs[1])
tap.ok(recs[2].get("body") == "", "an empty body reads back empty", recs[2])
tap.eq(headers.get("x-sluice-next-offset"), str(first_next + 3),
       "x-sluice-next-offset says where to continue")
status, _, limited = read_partition("events", p1, "?from=%d&limit=1" % first_next)
tap.ok(status == 200 and len(limited) == 1 and limited[0]["offset"] == first_next,
       "limit=1 answers one record", limited)
status, _, tail = read_partition("events", p1, "?from=%d" % (first_next + 1))
tap.ok(status == 200 and [x["offset"] for x in tail] == [first_next + 1, first_next + 2],
       "from= inside a batch skips the records before it", tail)
status, _, empty = read_partition("events", p1, "?from=%d" % (first_next + 3))
tap.ok(status == 200 and empty == [], "reading at the end answers [] at once", empty)
check_error(call("GET", "/events/partitions/%d/messages?from=%d" % (p1, first_next + 100)), 400,
            False, "from= past the end: 400 OffsetOutOfRange", "OffsetOutOfRange")
check_error(call("GET", "/events/partitions/0/messages?from=abc"), 400, False,
            "from=abc: 400")
check_error(call("GET", "/events/partitions/0/messages?limit=0"), 400, False, "limit=0: 400")
status, _, data = call("GET", "/events/partitions/%d/messages?from=0" % p1,
                       token=policy_token("sender"))
tap.eq(status, 403, "reading without Listen: 403")
status, _, data = call("GET", "/events/partitions/%d/messages?from=0" % p1,
                       token=policy_token("reader"))
tap.eq(status, 200, "reading with Listen: 200")

# --- authentication failures ----------------------------------------------------------------

check_error(call("POST", "/devices/dev1/messages/events", body="x", token=None), 401, True,
            "telemetry without a token: 401", "IotHubUnauthorizedAccess")
bad = st.sas_token("%s/devices/dev1" % HOST, st.new_key())
check_error(call("POST", "/devices/dev1/messages/events", body="x", token=bad), 401, True,
            "telemetry with a token of the wrong key: 401")
expired = st.sas_token("%s/devices/dev1" % HOST, sym["primaryKey"],
                       expiry=int(time.time()) - 60)
check_error(call("POST", "/devices/dev1/messages/events", body="x", token=expired), 401, True,
            "telemetry with an expired token: 401")
check_error(call("POST", "/devices/dev1/messages/events", body="x", token="Bearer abc"), 401,
            True, "a non-SAS Authorization header: 401")
check_error(call("POST", "/devices/dev1/messages/events", body="x", token=DEV2), 401, True,
            "dev2's token on dev1's path: 401 (the token does not cover it)")
check_error(call("POST", "/devices/dev1/messages/events", body="x",
                 token=policy_token("sender")), 403, True,
            "a policy without DeviceConnect sending as a device: 403")
status, _, _ = call("POST", "/devices/dev2/messages/events", body="as owner")
tap.eq(status, 204, "a policy with DeviceConnect may send for any device")
check_error(call("GET", "/events", token=policy_token("owner", resource=HOST + "/orders")),
            401, False, "a policy token scoped to /orders does not cover /events: 401")
status, _, _ = call("GET", "/orders", token=policy_token("owner", resource=HOST + "/orders"))
tap.eq(status, 200, "the same token covers /orders")

# Disable dev2 over the registry API: its token stops working at once.
status, _, _ = call("POST", "/devices/dev2/messages/events", body="before", token=DEV2)
tap.eq(status, 204, "dev2 sends before it is disabled")
current = as_json(call("GET", "/devices/dev2")[2])
current["status"] = "disabled"
status, headers, data = call("PUT", "/devices/dev2", body=current,
                             headers={"If-Match": '"%s"' % current["etag"]})
tap.ok(status == 200 and as_json(data)["status"] == "disabled",
       "PUT with the current If-Match disables dev2", data)
check_error(call("POST", "/devices/dev2/messages/events", body="after", token=DEV2), 401, True,
            "telemetry of a disabled device: 401")
code, body, _ = curl("-X", "POST", "http://%s:%d/devices/dev2/messages/events" % plain,
                     "-H", "Authorization: " + DEV2, "--data-binary", "after")
tap.eq(code, 401, "curl sees the disabled device's 401 too")
status, headers, data = call("DELETE", "/devices/dev2")
tap.eq(status, 204, "DELETE /devices/dev2: 204")
check_error(call("GET", "/devices/dev2"), 404, True, "a deleted device is gone: 404")

# --- stream sends -------------------------------------------------------------------------

before = {p["id"]: p["next"] for p in as_json(call("GET", "/orders")[2])["partitions"]}
status, _, data = call("POST", "/orders/messages", body="single one",
                       token=policy_token("sender"),
                       headers={"BrokerProperties": json.dumps({"PartitionKey": "k1",
                                                                "MessageId": "s-1"}),
                                "iothub-app-level": "warn"})
tap.eq(status, 201, "POST /orders/messages: 201 Created")
batch = [{"Body": "b-%d" % i, "UserProperties": {"i": i},
          "BrokerProperties": {"PartitionKey": "k%d" % (i % 2)}} for i in range(6)]
status, _, data = call("POST", "/orders/messages", body=json.dumps(batch),
                       token=policy_token("sender"),
                       headers={"Content-Type": "application/vnd.microsoft.servicebus.json"})
tap.eq(status, 201, "a batch of 6 (application/vnd.microsoft.servicebus.json): 201")
check_error(call("POST", "/orders/messages", body="[{\"Body\": ", token=policy_token("sender"),
                 headers={"Content-Type": "application/vnd.microsoft.servicebus.json"}),
            400, False, "a malformed JSON batch: 400 BadRequest", "BadRequest")
check_error(call("POST", "/orders/messages", body="x", token=policy_token("sender"),
                 headers={"BrokerProperties": "{nope"}),
            400, False, "malformed BrokerProperties: 400")
check_error(call("POST", "/orders/messages", body="x", token=policy_token("reader")), 403,
            False, "send without the Send right: 403", "Forbidden")
status, _, _ = call("POST", "/orders/partitions/1/messages", body="to p1",
                    token=policy_token("sender"))
tap.eq(status, 201, "POST /orders/partitions/1/messages: 201")
got = {}
for p in (0, 1):
    status, _, recs = read_partition("orders", p, "?from=%d" % before[p])
    got[p] = recs or []
keyed = {}
for p, recs in got.items():
    for r in recs:
        if r.get("key"):
            keyed.setdefault(r["key"], set()).add(p)
tap.ok(all(parts == {st.partition_for_key(k, 2)} for k, parts in keyed.items())
       and set(keyed) == {"k0", "k1"}, "each partition key lands in murmur2's partition",
       keyed)
order_k0 = [r["body"] for p in got for r in got[p] if r.get("key") == "k0"]
tap.eq(order_k0, ["b-0", "b-2", "b-4"], "a key's batch messages keep their order")
single = [r for p in got for r in got[p] if r.get("body") == "single one"]
tap.ok(single and single[0]["properties"].get("message-id") == "s-1"
       and single[0]["properties"].get("level") == "warn",
       "BrokerProperties MessageId and iothub-app-* properties of a single send", single)
tap.ok(any(r.get("body") == "to p1" and r.get("key") is None for r in got[1]),
       "the partition send landed in partition 1 without a key", got[1])
tap.ok(all(r["properties"].get("i") == str(int(r["body"][2:]))
           for p in got for r in got[p] if r["body"].startswith("b-")),
       "UserProperties become properties (numbers as text)")

# --- body limits: 413 before the body is read ----------------------------------------------

big = b"x" * (MAX_BODY + 1)
check_error(call("POST", "/devices/dev1/messages/events", body=big, token=DEV1), 413, True,
            "a body over max-body (Content-Length): 413 MessageTooLarge", "MessageTooLarge")
status, _, _ = call("POST", "/devices/dev1/messages/events", body=b"y" * MAX_BODY, token=DEV1)
tap.eq(status, 204, "a body of exactly max-body is accepted")


def raw_exchange(head, chunks, timeout=10):
    """Send `head` and `chunks` on a raw socket without finishing the body;
    the bytes answered before the deadline (the server must answer alone)."""
    sock = socket.create_connection(plain, timeout=timeout)
    try:
        sock.sendall(head)
        for c in chunks:
            sock.sendall(c)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                piece = sock.recv(65536)
            except socket.timeout:
                break
            if not piece:
                break
            data += piece
        return data
    finally:
        sock.close()


head = ("POST /devices/dev1/messages/events HTTP/1.1\r\nHost: localhost\r\n"
        "Authorization: %s\r\nContent-Length: %d\r\n\r\n" % (DEV1, 50 * 1024 * 1024)).encode()
answer = raw_exchange(head, [b"z" * 1000])
tap.ok(answer.startswith(b"HTTP/1.1 413"),
       "a 50 MiB Content-Length is refused from the headers, with 1000 bytes sent", answer[:200])
head = ("POST /orders/messages HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n"
        "Transfer-Encoding: chunked\r\n\r\n" % policy_token("sender")).encode()
chunk = b"%x\r\n%s\r\n" % (16384, b"c" * 16384)
answer = raw_exchange(head, [chunk] * (MAX_BODY // 16384 + 1))
tap.ok(answer.startswith(b"HTTP/1.1 413") and b'"ErrorCode":"MessageTooLarge"' in answer,
       "a chunked body is refused once it passes max-body, before its last chunk",
       answer[:300])
big_file = os.path.join(work, "big.bin")
with open(big_file, "wb") as f:
    f.write(b"q" * (4 * MAX_BODY))
code, body, res = curl("-X", "POST", "http://%s:%d/devices/dev1/messages/events" % plain,
                       "-H", "Authorization: " + DEV1, "-H", "Transfer-Encoding: chunked",
                       "--data-binary", "@" + big_file)
tap.ok(code == 413 and b"MessageTooLarge" in body, "curl's chunked oversize body: 413",
       (code, body, res.stderr))
status, _, _ = call("POST", "/devices/dev1/messages/events", body="after 413", token=DEV1)
tap.eq(status, 204, "the hub serves requests normally after the refusals")

# --- consumer groups and long polls -----------------------------------------------------------

status, _, data = call("GET", "/events/consumergroups/g1/offsets")
offs = as_json(data)
tap.ok(status == 200 and len(offs) == PARTITIONS and all(o["offset"] == -1 for o in offs),
       "a new group has no committed offsets (-1)", data)
status, _, data = call("POST", "/events/consumergroups/g1/offsets",
                       body=[{"partition": p1, "offset": first_next + 1}])
tap.eq(status, 204, "POST offsets: 204")
status, _, data = call("GET", "/events/consumergroups/g1/offsets")
tap.ok(status == 200 and {o["partition"]: o["offset"] for o in as_json(data)}.get(p1)
       == first_next + 1, "GET offsets shows the commit", data)
status, _, recs = read_partition("events", p1, "?group=g1&limit=1")
tap.ok(status == 200 and recs and recs[0]["offset"] == first_next + 1,
       "?group=g1 without from starts at the committed offset", recs)
other = (p1 + 1) % PARTITIONS
bounds = as_json(call("GET", "/events")[2])["partitions"][other]
status, _, recs = read_partition("events", other, "?group=g1&limit=1")
tap.ok(status == 200 and (recs[0]["offset"] if recs else bounds["next"]) == bounds["first"],
       "?group= on a partition without a commit starts at its first offset", recs)
check_error(call("POST", "/events/consumergroups/g1/offsets", body="[{\"partition\":"), 400,
            False, "malformed offsets JSON: 400", "BadRequest")
check_error(call("POST", "/events/consumergroups/g1/offsets",
                 body=[{"partition": PARTITIONS, "offset": 0}]), 400, False,
            "a commit for a partition that does not exist: 400")
check_error(call("POST", "/events/consumergroups/g1/offsets",
                 body=[{"partition": 0, "offset": 0}], token=policy_token("sender")), 403,
            False, "committing without Listen: 403")
check_error(call("GET", "/nosuch/consumergroups/g1/offsets"), 404, False,
            "offsets of an unknown stream: 404")

end = as_json(call("GET", "/events")[2])["partitions"][p1]["next"]
t0 = time.monotonic()
status, _, recs = read_partition("events", p1, "?from=%d&wait=300" % end)
waited = time.monotonic() - t0
tap.ok(status == 200 and recs == [] and 0.25 <= waited < 5,
       "wait=300 at the end answers [] after about 300 ms (%.2f s)" % waited, recs)
result = {}


def long_poll():
    t = time.monotonic()
    result["answer"] = read_partition("events", p1, "?from=%d&wait=15000" % end)
    result["elapsed"] = time.monotonic() - t


poller = threading.Thread(target=long_poll)
poller.start()
# Give the poll a moment to reach the hub; it returns the record either way.
time.sleep(0.3)
status, _, _ = call("POST", "/devices/dev1/messages/events", body="wake up", token=DEV1)
poller.join(30)
answer = result.get("answer", (0, {}, None))
tap.ok(answer[0] == 200 and answer[2] and answer[2][0]["body"] == "wake up"
       and result["elapsed"] < 2.5,
       "a long poll (wait=15000, capped to 3 s) returns when a message arrives (%.2f s)"
       % result.get("elapsed", -1), answer)
t0 = time.monotonic()
status, _, recs = read_partition("events", p1, "?from=%d&wait=999999999" % (end + 1))
waited = time.monotonic() - t0
tap.ok(status == 200 and recs == [] and 2.5 < waited < 10,
       "a huge wait= is capped by max-wait (3 s), not refused (%.2f s)" % waited, recs)

# --- TLS ----------------------------------------------------------------------------------

tap.ok(os.path.exists(CA), "sluiced generated its development certificate in {data-dir}/tls")
code, body, res = curl("--cacert", CA, "https://localhost:%d/healthz" % tls[1])
tap.ok(code == 200 and body.strip() == b"ok", "curl --cacert dev-cert.pem: TLS /healthz 200",
       (code, body, res.stderr))
code, body, res = curl("--cacert", CA, "-X", "POST",
                       "https://localhost:%d/devices/dev1/messages/events" % tls[1],
                       "-H", "Authorization: " + DEV1, "-H", "iothub-app-via: tls",
                       "--data-binary", "over tls")
tap.eq(code, 204, "telemetry over TLS with curl: 204")
status, _, recs = read_partition("events", p1, "?from=%d" % end, address=tls, cafile=CA)
tap.ok(status == 200 and any(r["body"] == "over tls" and r["properties"].get("via") == "tls"
                             for r in recs or []),
       "the TLS message reads back over TLS (http.client, verified)", recs)
code, body, res = curl("https://localhost:%d/healthz" % tls[1])
tap.ok(code == 0 and res.returncode != 0, "curl without --cacert refuses the self-signed "
       "certificate", res.stderr)
big = b"x" * (MAX_BODY + 1)
check_error(call("POST", "/devices/dev1/messages/events", body=big, token=DEV1, address=tls,
                 cafile=CA), 413, True, "413 over TLS too")

# --- keep-alive -----------------------------------------------------------------------------

conn = http.client.HTTPConnection(*plain, timeout=30)
socks = set()
statuses = []
for i in range(5):
    for method, path, body in (("POST", "/devices/dev1/messages/events", "ka-%d" % i),
                               ("GET", "/events", None), ("GET", "/nosuchstream", None)):
        conn.request(method, path, body=body, headers={"Authorization": DEV1 if body else OWNER})
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
        socks.add(id(conn.sock))
tap.ok(statuses == [204, 200, 404] * 5 and len(socks) == 1,
       "15 requests (204, 200, 404) on one keep-alive connection", (statuses, len(socks)))
conn.close()

# --- metrics --------------------------------------------------------------------------------

code, body, _ = curl("http://%s:%d/metrics" % plain)
text = body.decode(errors="replace")
tap.ok(code == 200 and re.search(r'^sluice_http_requests_total\{status="204"\} [1-9]', text, re.M),
       "/metrics counts requests by status (204)", text[:2000])
tap.ok(re.search(r'^sluice_http_requests_total\{status="401"\} [1-9]', text, re.M)
       and re.search(r'^sluice_http_requests_total\{status="413"\} [1-9]', text, re.M),
       "/metrics counts 401 and 413 answers")
for name in ("sluice_http_request_bytes_total", "sluice_http_connections",
             "sluice_appends_total", "sluice_append_bytes_total", "sluice_fsyncs_total",
             "sluice_group_commit_appends_total"):
    tap.ok(re.search(r"^%s \d+" % name, text, re.M), "/metrics has %s" % name)
tap.ok("# TYPE sluice_http_connections gauge" in text, "connections is a gauge")

# Connections that clients close while idle between requests are let go
# (libsoup 3.2 alone would keep each one, and its fd, forever).
gauge = None
try:
    opened = []
    for i in range(20):
        c = http.client.HTTPConnection(*plain, timeout=30)
        c.request("GET", "/healthz")
        c.getresponse().read()
        opened.append(c)
    for c in opened:
        c.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = curl("http://%s:%d/metrics" % plain)[1].decode(errors="replace")
        m = re.search(r"^sluice_http_connections (\d+)", text, re.M)
        gauge = int(m.group(1)) if m else None
        if gauge is not None and gauge <= 1:
            break
except (OSError, http.client.HTTPException) as e:
    tap.diag("the hub stopped answering: %r" % e)
tap.ok(gauge is not None and gauge <= 1,
       "20 connections closed by their clients after a request are gone (gauge %r)" % gauge,
       hub.log_tail(5))

# --- graceful stop ----------------------------------------------------------------------------

code = hub.stop()
tap.eq(code, 0, "sluiced stops on SIGTERM with status 0")

# --- ops-auth: /metrics wants a ServiceConnect token, /healthz never does ------------------

work2 = st.tempdir()
data2 = os.path.join(work2, "data")
hub2 = st.Hub(st.https_hub_config(data2, policies, {"events": {"partitions": 1}},
                                  https={"ops-auth": True, "tls-listen": None}),
              workdir=work2, data_dir=data2)
try:
    hub2.start()
    addr2 = hub2.address("https", "plain")
    status, _, _ = st.http_request(addr2, "GET", "/healthz")
    tap.eq(status, 200, "ops-auth: /healthz still answers without a token")
    code, body, _ = curl("-X", "POST", "http://%s:%d/devices/dev1/messages/events" % addr2,
                         "-H", "Authorization: " + OWNER, "-H", "Expect: 100-continue",
                         "--data-binary", "expecting")
    tap.eq(code, 204, "Expect: 100-continue is honoured (curl)")
    check_error(st.http_request(addr2, "GET", "/metrics"), 401, False,
                "ops-auth: /metrics without a token: 401")
    check_error(st.http_request(addr2, "GET", "/metrics",
                                headers={"Authorization": policy_token("sender")}),
                403, False, "ops-auth: /metrics with a token without ServiceConnect: 403")
    status, _, data = st.http_request(addr2, "GET", "/metrics",
                                      headers={"Authorization": OWNER})
    tap.ok(status == 200 and b"sluice_http_requests_total" in data,
           "ops-auth: /metrics with a ServiceConnect token: 200", data[:300])
except st.HubError as e:
    tap.ok(False, "second sluiced (ops-auth) runs", str(e))
finally:
    hub2.stop()
tap.done()
