# transport-mqtt: [mqtt-map.*] and [mqtt-acl.*] (parsing and decisions) and their tests.
# SPDX-License-Identifier: Apache-2.0
