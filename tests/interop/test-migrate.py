#!/usr/bin/python3
# sluiced --migrate: a data directory written by a real sluiced on storage
# `file` (two streams, one trimmed by retention so it no longer starts at
# offset 0, devices in the registry, blobs) is copied to `lmdb` and back to
# `file`. Each copy prints its counts and verifies itself; then sluiced runs
# on the copy and serves the same records at the same offsets, the same
# devices, and the blobs are byte for byte the same. Refusals: a non-empty
# target and a source that does not exist. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import filecmp
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
key = st.new_key()
token = st.sas_token("localhost", key, skn="owner")
STREAMS = {"events": {"partitions": 2, "durability": "batch"},
           "short": {"partitions": 1, "durability": "batch", "retention-size": "6KiB"}}
DEVICES = ["dev-a", "dev-b", "dev-c"]
work = st.tempdir()


def hub_dir(name):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    return d


def config(name, storage):
    data_dir = os.path.join(work, name)
    text = st.https_hub_config(
        data_dir, {"owner": {"primary-key": key,
                             "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                        "DeviceConnect", "Send", "Listen"]}},
        STREAMS, https={"tls-listen": None})
    text = text.replace("[storage]\nplugin = file", "[storage]\n" + storage)
    path = os.path.join(work, name + ".conf")
    with open(path, "w") as f:
        f.write(text)
    return path, data_dir, text


def call(hub, method, path, body=None):
    if isinstance(body, dict):
        body = json.dumps(body)
    return st.http_request(hub.address("https", "plain"), method, path, body=body,
                           headers={"Authorization": token, "Content-Type": "application/json"})


def snapshot(hub):
    """{stream: {partition: (first, next, [(offset, key, body)])}} and devices."""
    out = {}
    for stream, opts in STREAMS.items():
        status, _, data = call(hub, "GET", "/" + stream)
        parts = {}
        for p in range(opts["partitions"]):
            b = json.loads(data)["partitions"][p]
            records, offset = [], b["first"]
            while offset < b["next"]:
                status, _, rd = call(hub, "GET", "/%s/partitions/%d/messages?from=%d&limit=500"
                                     % (stream, p, offset))
                if status != 200:
                    raise st.HubError("read %s/%d at %d: HTTP %d" % (stream, p, offset, status))
                rs = json.loads(rd)
                if not rs:
                    break
                records.extend((r["offset"], r["key"], r["body"]) for r in rs)
                offset = rs[-1]["offset"] + 1
            parts[p] = (b["first"], b["next"], records)
        out[stream] = parts
    devices = {}
    for d in DEVICES:
        status, _, data = call(hub, "GET", "/devices/" + d)
        devices[d] = (status, json.loads(data).get("deviceId") if status == 200 else None)
    return out, devices


def migrate(src, dst):
    res = subprocess.run([st.find_sluiced(), "--migrate", src, dst], capture_output=True,
                         env=dict(os.environ, SLUICE_PLUGIN_PATH=st.plugin_path()), timeout=300)
    counts = {}
    for line in res.stdout.decode().splitlines():
        words = line.split()
        if len(words) == 2 and words[1].isdigit():
            counts[words[0]] = int(words[1])
    return res.returncode, counts, res.stdout.decode(), res.stderr.decode(errors="replace")


try:
    file_conf, file_dir, file_text = config("file-data", "plugin = file\nsegment-size = 4KiB")
    hub = st.Hub(file_text, workdir=hub_dir("hub1"), data_dir=file_dir)
    hub.start()
    for d in DEVICES:
        status, _, data = call(hub, "PUT", "/devices/" + d, {"deviceId": d})
        if status != 200:
            raise st.HubError("PUT /devices/%s: HTTP %d %r" % (d, status, data[:200]))
    for i in range(60):
        for stream in STREAMS:
            status, _, data = st.http_request(
                hub.address("https", "plain"), "POST",
                "/devices/%s/messages/events" % DEVICES[i % 3] if stream == "events"
                else "/short/messages", body="%s-%03d-%s" % (stream, i, "z" * 200),
                headers={"Authorization": token})
    # Retention runs every 30 s: wait until "short" no longer starts at 0.
    deadline = time.monotonic() + 75
    first = 0
    while time.monotonic() < deadline and first == 0:
        status, _, data = call(hub, "GET", "/short")
        first = json.loads(data)["partitions"][0]["first"]
        if first == 0:
            time.sleep(0.5)  # polling a condition the hub changes on its own timer
    tap.ok(first > 0, "the source has a log trimmed by retention (first offset %d)" % first)
    before, devices_before = snapshot(hub)
    tap.ok(sum(len(r) for s in before.values() for (_, _, r) in s.values()) > 60
           and all(v[0] == 200 for v in devices_before.values()),
           "the source holds records in 3 partitions and %d devices" % len(DEVICES))
    tap.eq(hub.stop(), 0, "the source hub stops cleanly")

    # Blobs, as storage-file keeps them (no upload API exists yet).
    blob_dir = os.path.join(file_dir, "blobs", "uploads", "dev-a")
    os.makedirs(blob_dir)
    blobs = {"uploads/dev-a/photo.bin": os.urandom(3 * 1024 * 1024 + 17),
             "uploads/dev-a/note.txt": b"hello"}
    for name, content in blobs.items():
        with open(os.path.join(file_dir, "blobs", name), "wb") as f:
            f.write(content)

    # file -> lmdb
    lmdb_conf, lmdb_dir, lmdb_text = config("lmdb-data", "plugin = lmdb\nmap-size = 2MiB")
    code, counts, out, err = migrate(file_conf, lmdb_conf)
    total_records = sum(len(r) for s in before.values() for (_, _, r) in s.values())
    tap.ok(code == 0 and counts.get("logs") == 3 and counts.get("records") == total_records
           and counts.get("blobs") == 2 and counts.get("keys", 0) >= len(DEVICES)
           and "verified" in out,
           "file -> lmdb: copied and verified (%s)" % counts, out + err)

    hub2 = st.Hub(lmdb_text, workdir=hub_dir("hub2"), data_dir=lmdb_dir)
    hub2.start()
    after, devices_after = snapshot(hub2)
    tap.ok(after == before, "lmdb serves every record at the same offset, bounds included",
           "before %r\nafter %r" % ({s: {p: v[:2] for p, v in x.items()} for s, x in before.items()},
                                    {s: {p: v[:2] for p, v in x.items()} for s, x in after.items()}))
    tap.eq(devices_after, devices_before, "the devices are in lmdb's registry")
    # The copy is a working hub: it appends after the copied offsets.
    status, _, _ = st.http_request(hub2.address("https", "plain"), "POST", "/short/messages",
                                   body="after-migration", headers={"Authorization": token})
    status2, _, data = call(hub2, "GET", "/short")
    tap.ok(200 <= status < 300 and json.loads(data)["partitions"][0]["next"]
           == before["short"][0][1] + 1, "lmdb appends continue at the copied next offset")
    tap.eq(hub2.stop(), 0, "the lmdb hub stops cleanly")

    # lmdb -> file
    back_conf, back_dir, back_text = config("file-back", "plugin = file")
    code, counts2, out, err = migrate(lmdb_conf, back_conf)
    tap.ok(code == 0 and counts2.get("records") == total_records + 1
           and counts2.get("blobs") == 2 and "verified" in out,
           "lmdb -> file: copied and verified (%s)" % counts2, out + err)
    same = all(filecmp.cmp(os.path.join(file_dir, "blobs", n), os.path.join(back_dir, "blobs", n),
                           shallow=False) for n in blobs)
    tap.ok(same, "the blobs came back byte for byte")
    hub3 = st.Hub(back_text, workdir=hub_dir("hub3"), data_dir=back_dir)
    hub3.start()
    back, devices_back = snapshot(hub3)
    before["short"][0] = (before["short"][0][0], before["short"][0][1] + 1,
                          before["short"][0][2] + [(before["short"][0][1], None, "after-migration")])
    tap.ok(back["events"] == before["events"] and back["short"][0][:2] == before["short"][0][:2],
           "file serves the same records again")
    tap.eq(devices_back, devices_before, "and the same devices")
    tap.eq(hub3.stop(), 0, "the file hub stops cleanly")

    # Refusals.
    code, _, _, err = migrate(file_conf, lmdb_conf)
    tap.ok(code == 1 and "not empty" in err, "a non-empty target is refused", err)
    code, _, _, err = migrate(os.path.join(work, "nothing.conf"), lmdb_conf)
    tap.ok(code == 1 and err.strip() != "", "a missing source config is refused", err)
except (st.HubError, OSError, ValueError) as e:
    tap.bail_out(str(e))
tap.done()
