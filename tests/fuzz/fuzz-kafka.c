/* libFuzzer target: Kafka request framing and decoding
 * (plugins/transport-kafka).
 *
 * Input: the bytes a client sends on one connection: frames of an int32
 * size and a request. Frames are cut as the transport cuts them (at most
 * 1 MiB each) and every one is decoded. The seed corpus
 * (tests/fuzz/corpus/kafka) is the recorded c2s.bin streams of the test
 * vectors.
 *
 * The decoder must never read out of bounds, leak or hit undefined
 * behaviour; a refusal of a request whose header was read must say so
 * (header_ok) with a codec error; and every decoded request must have
 * views that lie inside its frame.
 *
 * Build and run: make fuzz && tests/fuzz/fuzz-kafka tests/fuzz/corpus/kafka
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "kafka-protocol.h"

static void
check_view (const KafkaRequest *req, const guint8 *data, gsize len)
{
  gsize frame_len;
  const guint8 *base = g_bytes_get_data (req->frame, &frame_len);

  if (data == NULL)
    return;
  g_assert (data >= base && data + len <= base + frame_len);
  /* Read every byte so that ASan sees any bad view. */
  for (gsize i = 0; i < len; i++)
    g_assert (data[i] == base[data - base + i]);
}

static void
check_request (const KafkaRequest *req)
{
  switch (req->header.api_key)
    {
    case KAFKA_API_PRODUCE:
      for (guint i = 0; i < req->produce.n_topics; i++)
        {
          g_assert (req->produce.topics[i].name != NULL);
          for (guint j = 0; j < req->produce.topics[i].n_partitions; j++)
            check_view (req, req->produce.topics[i].partitions[j].records,
                        req->produce.topics[i].partitions[j].records_len);
        }
      break;
    case KAFKA_API_JOIN_GROUP:
      for (guint i = 0; i < req->join_group.n_protocols; i++)
        check_view (req, req->join_group.protocols[i].metadata,
                    req->join_group.protocols[i].metadata_len);
      break;
    case KAFKA_API_SYNC_GROUP:
      for (guint i = 0; i < req->sync_group.n_assignments; i++)
        check_view (req, req->sync_group.assignments[i].assignment,
                    req->sync_group.assignments[i].assignment_len);
      break;
    case KAFKA_API_SASL_AUTHENTICATE:
      check_view (req, req->sasl_authenticate.auth_bytes,
                  req->sasl_authenticate.auth_bytes_len);
      break;
    case KAFKA_API_METADATA:
      for (guint i = 0; i < req->metadata.n_topics; i++)
        g_assert (req->metadata.topics[i] != NULL);
      break;
    default:
      break;
    }
}

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  gsize pos = 0;

  while (pos < size)
    {
      gsize frame_size;
      KafkaFrameStatus status = kafka_frame_check (data + pos, size - pos, 1 << 20,
                                                   &frame_size);
      g_autoptr (GBytes) frame = NULL;
      g_autoptr (KafkaRequest) req = NULL;
      g_autoptr (GError) error = NULL;

      if (status != KAFKA_FRAME_COMPLETE)
        break;
      frame = g_bytes_new (data + pos + 4, frame_size);
      pos += 4 + frame_size;
      req = kafka_request_new (frame);
      if (kafka_request_decode (req, &error))
        {
          g_assert (req->header_ok);
          check_request (req);
        }
      else
        {
          g_assert (error != NULL && error->domain == KAFKA_CODEC_ERROR);
          if (error->code != KAFKA_CODEC_ERROR_MALFORMED)
            g_assert (req->header_ok);
        }
    }
  return 0;
}
