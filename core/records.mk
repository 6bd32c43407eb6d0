# Record batches (Kafka record batch v2), CRC-32C and the murmur2 partitioner.
# SPDX-License-Identifier: Apache-2.0
core_records_sources = \
	core/records-private.h core/varint.h \
	core/crc32c.c core/murmur2.c \
	core/record-batch.c core/record-builder.c core/record-reader.c \
	core/record-compress-private.h core/record-compress.c
# The codecs Kafka producers use (gzip, snappy, lz4, zstd) live in libsluice,
# so every transport reads compressed batches.
core_records_cflags = $(KAFKA_COMPRESS_CFLAGS)
core_records_libs = $(KAFKA_COMPRESS_LIBS)
