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
/* (transfer none) */
GIOStream *https_stream_get_base (HttpsStream *stream);

G_END_DECLS
