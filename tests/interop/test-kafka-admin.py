#!/usr/bin/python3
# transport-kafka topic administration against a real sluiced:
# python3-kafka's and python3-confluent-kafka's admin clients create topics
# (streams with their partitions and retention), describe their configs,
# refuse what a one-node hub cannot do, delete them; the created streams
# survive a restart and the HTTPS read API sees them. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()

try:
    import kafka  # noqa: F401
    import confluent_kafka  # noqa: F401
except ImportError as e:
    tap.bail_out("%s: install the Debian packages python3-kafka and python3-confluent-kafka" % e)
for plugin in ("transport-https", "transport-kafka"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

owner_key = st.new_key()
sender_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["ServiceConnect", "Send", "Listen", "Manage"]},
            "sender": {"primary-key": sender_key, "rights": ["Send", "Listen"]}}
streams = {"configured": {"partitions": 2, "durability": "batch"}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
kafka_sections = [
    ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0", "anonymous-policy": "owner"}),
    ("transport.kafkasend", {"plugin": "kafka", "listen": "127.0.0.1:0",
                             "anonymous-policy": "sender"}),
]
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=kafka_sections),
             workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path(
                 [os.path.join(st.builddir(), "plugins", "transport-kafka")])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
OWNER = st.sas_token("localhost", owner_key, skn="owner")


def broker(name="kafka"):
    return "%s:%d" % hub.address(name, "plain")


def python(script, *args, timeout=120):
    res = subprocess.run(["/usr/bin/python3", "-c", script] + list(args), capture_output=True,
                         timeout=timeout)
    try:
        result = json.loads(res.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    return res.returncode, result, res.stderr.decode(errors="replace")[-1500:]


KP_HELPERS = r"""
import json, sys, kafka.errors
from kafka.admin import KafkaAdminClient, NewTopic, ConfigResource, ConfigResourceType
def code(fn):
    # python3-kafka raises on the first topic error: one topic per call.
    try:
        fn()
        return 0
    except kafka.errors.KafkaError as e:
        return getattr(e, "errno", -1)
a = KafkaAdminClient(bootstrap_servers=sys.argv[1])
out = {}
"""

KP_CREATE = KP_HELPERS + r"""
out["create"] = {
    "kp-made": code(lambda: a.create_topics([NewTopic("kp-made", 3, 1,
                                             topic_configs={"retention.ms": "3600000"})])),
    "kp-rf3": code(lambda: a.create_topics([NewTopic("kp-rf3", 1, 3)])),
}
out["again"] = code(lambda: a.create_topics([NewTopic("kp-made", 3, 1)]))
r = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-made")])
res = r[0].resources[0]
out["describe"] = {"error": res[0], "configs": {c[0]: c[1] for c in res[4]}}
out["topics"] = sorted(a.list_topics())
print(json.dumps(out))
"""
rc, res, err = python(KP_CREATE, broker())
res = res or {}
tap.ok(rc == 0 and res.get("create", {}).get("kp-made") == 0,
       "python3-kafka admin: CreateTopics 'kp-made' (3 partitions, retention.ms 1 h)",
       (rc, res, err))
tap.eq(res.get("create", {}).get("kp-rf3"), 38,
       "replication factor 3 on a one-node hub: INVALID_REPLICATION_FACTOR (38)")
tap.ok(res.get("again") == 36,
       "creating it again: TOPIC_ALREADY_EXISTS (36)", res.get("again"))
configs = res.get("describe", {}).get("configs", {})
tap.ok(res.get("describe", {}).get("error") == 0 and configs.get("retention.ms") == "3600000"
       and configs.get("sluice.partitions") == "3" and configs.get("cleanup.policy") == "delete",
       "DescribeConfigs of the topic: its retention, partitions and policy", res.get("describe"))
tap.ok("kp-made" in res.get("topics", []) and "kp-rf3" not in res.get("topics", []),
       "the new topic is listed, the refused one is not", res.get("topics"))

status, _, data = st.http_request(hub.address("https", "plain"), "GET", "/kp-made",
                                  headers={"Authorization": OWNER})
info = json.loads(data) if status == 200 else {}
tap.ok(status == 200 and len(info.get("partitions", [])) == 3,
       "the HTTPS read API sees the created stream with 3 partitions", (status, data[:200]))

CK_ADMIN = r"""
import json, sys
import confluent_kafka.admin as ca
a = ca.AdminClient({"bootstrap.servers": sys.argv[1]})
out = {}
fs = a.create_topics([ca.NewTopic("ck-made", num_partitions=2, replication_factor=1,
                                  config={"max.message.bytes": "65536"}),
                      ca.NewTopic("bad name!", num_partitions=1, replication_factor=1),
                      ca.NewTopic("ck-compact", num_partitions=1, replication_factor=1,
                                  config={"cleanup.policy": "compact"})])
for t, f in fs.items():
    try:
        f.result(15)
        out[t] = 0
    except Exception as e:
        out[t] = e.args[0].code()
md = a.list_topics(timeout=10)
out["partitions"] = len(md.topics["ck-made"].partitions) if "ck-made" in md.topics else -1
res = a.describe_configs([ca.ConfigResource("topic", "ck-made")])
for r, f in res.items():
    out["max"] = f.result(15)["max.message.bytes"].value
print(json.dumps(out))
"""
rc, res, err = python(CK_ADMIN, broker())
res = res or {}
tap.ok(rc == 0 and res.get("ck-made") == 0 and res.get("partitions") == 2
       and res.get("max") == "65536",
       "python3-confluent-kafka admin: create 'ck-made' (2 partitions, max.message.bytes) and "
       "describe it", (rc, res, err))
tap.eq(res.get("bad name!"), 17, "an invalid stream name: INVALID_TOPIC_EXCEPTION (17)")
tap.eq(res.get("ck-compact"), 40, "cleanup.policy=compact: INVALID_CONFIG (40)")

KP_FORBIDDEN = KP_HELPERS + r"""
print(json.dumps({"create": {"not-mine": code(lambda: a.create_topics([NewTopic("not-mine", 1, 1)]))},
                  "delete": {"configured": code(lambda: a.delete_topics(["configured"]))}}))
"""
rc, res, err = python(KP_FORBIDDEN, broker("kafkasend"))
res = res or {}
tap.ok(res.get("create", {}).get("not-mine") == 29 and res.get("delete", {}).get("configured") == 29,
       "without Manage: CreateTopics and DeleteTopics get TOPIC_AUTHORIZATION_FAILED (29)",
       (rc, res, err))

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly")
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not restart: %s" % e)

KP_DELETE = KP_HELPERS + r"""
before = sorted(a.list_topics())
d = {t: code(lambda t=t: a.delete_topics([t])) for t in ("kp-made", "configured", "no-such")}
after = sorted(a.list_topics())
print(json.dumps({"before": before, "delete": d, "after": after}))
"""
rc, res, err = python(KP_DELETE, broker())
res = res or {}
tap.ok("kp-made" in res.get("before", []) and "ck-made" in res.get("before", []),
       "created topics survive a restart", res.get("before"))
tap.ok(res.get("delete", {}).get("kp-made") == 0 and "kp-made" not in res.get("after", ["kp-made"]),
       "DeleteTopics removes 'kp-made'", (rc, res, err))
tap.eq(res.get("delete", {}).get("configured"), 44,
       "a stream of a [stream.*] section is not deleted: POLICY_VIOLATION (44)")
tap.eq(res.get("delete", {}).get("no-such"), 3, "an unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3)")

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly (exit 0)")
tap.done()
