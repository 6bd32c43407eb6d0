# Record batches (Kafka record batch v2), CRC-32C and the murmur2 partitioner.
# SPDX-License-Identifier: Apache-2.0
core_records_sources = \
	core/records-private.h core/varint.h \
	core/crc32c.c core/murmur2.c \
	core/record-batch.c core/record-builder.c core/record-reader.c
