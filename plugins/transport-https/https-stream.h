/* transport-https — the stream an accepted connection is given to libsoup
 * as (see https-stream.c for why it exists).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

#define HTTPS_TYPE_STREAM (https_stream_get_type ())
G_DECLARE_FINAL_TYPE (HttpsStream, https_stream, HTTPS, STREAM, GIOStream)

/* Wrap `base` (a GSocketConnection or a GTlsConnection over one); counts one
 * connection in `connections` until finalized. (transfer full) */
GIOStream *https_stream_new (GIOStream *base, SluiceCounter *connections);
/* Ours, found under the streams libsoup wrapped it in. (transfer none) */
HttpsStream *https_stream_find (GIOStream *stream);
/* The connection now carries a WebSocket: end of stream is reported as
 * such, and `progress` runs after every write that reached the base. */
void https_stream_carry (HttpsStream *stream, void (*progress) (gpointer data), gpointer data);
/* Bytes written to the base stream so far. */
guint64 https_stream_get_written (HttpsStream *stream);
/* While paused, reads would block and new sources wait for the resume. */
void https_stream_set_paused (HttpsStream *stream, gboolean paused);
/* (transfer none) */
GIOStream *https_stream_get_base (HttpsStream *stream);

G_END_DECLS
