/* transport-mqtt — topic names and topic filters.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-topic.h"

#include <string.h>

G_DEFINE_QUARK (mqtt-topic-error-quark, mqtt_topic_error)

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN (sizeof SHARE_PREFIX - 1)

static gsize
max_length_of (const MqttTopicLimits *limits)
{
  if (limits == NULL || limits->max_length == 0
      || limits->max_length > MQTT_TOPIC_MAX_LENGTH)
    return MQTT_TOPIC_MAX_LENGTH;
  return limits->max_length;
}

/* Length, UTF-8 and NUL: the checks names and filters share. */
static gboolean
check_string (const char *text,
              gsize len,
              const MqttTopicLimits *limits,
              const char *what,
              GError **error)
{
  gsize max = max_length_of (limits);

  if (len == 0)
    {
      g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_EMPTY,
                   "%s is empty", what);
      return FALSE;
    }
  if (len > max)
    {
      g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_TOO_LONG,
                   "%s is %" G_GSIZE_FORMAT " bytes long, the limit is %"
                   G_GSIZE_FORMAT, what, len, max);
      return FALSE;
    }
  /* g_utf8_validate_len refuses U+0000 as well as ill-formed sequences,
   * surrogates and code points above U+10FFFF: what MQTT-1.5.4-1 and -2 ask. */
  if (!g_utf8_validate_len (text, len, NULL))
    {
      g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_INVALID_UTF8,
                   "%s is not valid UTF-8 or contains U+0000", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_levels (guint levels,
              const MqttTopicLimits *limits,
              const char *what,
              GError **error)
{
  if (limits != NULL && limits->max_levels > 0 && levels > limits->max_levels)
    {
      g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_TOO_MANY_LEVELS,
                   "%s has %u levels, the limit is %u", what, levels,
                   limits->max_levels);
      return FALSE;
    }
  return TRUE;
}

gboolean
mqtt_topic_name_validate (const char *topic,
                          gsize len,
                          const MqttTopicLimits *limits,
                          GError **error)
{
  guint levels = 1;

  if (!check_string (topic, len, limits, "topic name", error))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (topic[i] == '/')
        levels++;
      else if (topic[i] == '+' || topic[i] == '#')
        {
          g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_WILDCARD,
                       "topic name contains the wildcard '%c' at byte %"
                       G_GSIZE_FORMAT, topic[i], i);
          return FALSE;
        }
    }
  return check_levels (levels, limits, "topic name", error);
}

/* The filter proper (no `$share/` prefix), already length- and
 * UTF-8-checked. */
static gboolean
check_filter_levels (const char *filter,
                     gsize len,
                     guint *levels_out,
                     gboolean *wildcards_out,
                     GError **error)
{
  guint levels = 1;
  gboolean wildcards = FALSE;
  gsize start = 0;

  for (gsize i = 0; i <= len; i++)
    {
      if (i < len && filter[i] != '/')
        {
          if (filter[i] != '+' && filter[i] != '#')
            continue;
          wildcards = TRUE;
          /* A wildcard must be the whole level: the byte before is the start
           * of the level and the byte after ends it. */
          if (i != start || (i + 1 < len && filter[i + 1] != '/'))
            {
              g_set_error (error, MQTT_TOPIC_ERROR,
                           MQTT_TOPIC_ERROR_BAD_WILDCARD,
                           "topic filter: '%c' at byte %" G_GSIZE_FORMAT
                           " must fill its whole level", filter[i], i);
              return FALSE;
            }
          if (filter[i] == '#' && i + 1 != len)
            {
              g_set_error (error, MQTT_TOPIC_ERROR,
                           MQTT_TOPIC_ERROR_BAD_WILDCARD,
                           "topic filter: '#' must be the last level");
              return FALSE;
            }
          continue;
        }
      if (i < len)
        {
          levels++;
          start = i + 1;
        }
    }
  *levels_out = levels;
  *wildcards_out = wildcards;
  return TRUE;
}

gboolean
mqtt_topic_filter_parse (const char *text,
                         gsize len,
                         const MqttTopicLimits *limits,
                         MqttTopicFilter *parsed,
                         GError **error)
{
  MqttTopicFilter out = { NULL, 0, text, len, 0, FALSE };

  if (!check_string (text, len, limits, "topic filter", error))
    return FALSE;

  /* The first level exactly `$share`: a shared subscription (5.0 §4.8.2). */
  if (len >= SHARE_PREFIX_LEN - 1
      && memcmp (text, SHARE_PREFIX, SHARE_PREFIX_LEN - 1) == 0
      && (len == SHARE_PREFIX_LEN - 1 || text[SHARE_PREFIX_LEN - 1] == '/'))
    {
      const char *name = text + SHARE_PREFIX_LEN;
      gsize rest = len > SHARE_PREFIX_LEN ? len - SHARE_PREFIX_LEN : 0;
      const char *slash = rest > 0 ? memchr (name, '/', rest) : NULL;
      gsize name_len;

      if (slash == NULL)
        {
          g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_SHARE,
                       "shared subscription: expected $share/{name}/{filter}");
          return FALSE;
        }
      name_len = slash - name;
      if (name_len == 0)
        {
          g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_SHARE,
                       "shared subscription: the share name is empty");
          return FALSE;
        }
      if (memchr (name, '+', name_len) != NULL
          || memchr (name, '#', name_len) != NULL)
        {
          g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_SHARE,
                       "shared subscription: the share name may not contain "
                       "'+' or '#'");
          return FALSE;
        }
      if (slash + 1 == text + len)
        {
          g_set_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_SHARE,
                       "shared subscription: the topic filter after the "
                       "share name is empty");
          return FALSE;
        }
      out.share_name = name;
      out.share_name_len = name_len;
      out.filter = slash + 1;
      out.filter_len = (text + len) - out.filter;
    }

  if (!check_filter_levels (out.filter, out.filter_len, &out.levels,
                            &out.has_wildcards, error))
    return FALSE;
  if (!check_levels (out.levels, limits, "topic filter", error))
    return FALSE;
  if (parsed != NULL)
    *parsed = out;
  return TRUE;
}

/* Length of the level starting at `at` (up to the next `/` or the end). */
static inline gsize
level_len (const char *text, gsize len, gsize at)
{
  const char *slash = at < len ? memchr (text + at, '/', len - at) : NULL;

  return slash != NULL ? (gsize) (slash - (text + at)) : len - at;
}

static inline gboolean
is_level (const char *level, gsize len, char c)
{
  return len == 1 && level[0] == c;
}

static inline gboolean
is_wildcard_level (const char *level, gsize len)
{
  return is_level (level, len, '+') || is_level (level, len, '#');
}

gboolean
mqtt_topic_matches (const char *filter,
                    gsize filter_len,
                    const char *topic,
                    gsize topic_len)
{
  gsize fi = 0, ti = 0;

  if (filter_len == 0 || topic_len == 0)
    return FALSE;
  /* MQTT-4.7.2-1: a leading wildcard never matches a `$` topic. */
  if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
    return FALSE;

  for (;;)
    {
      gsize fl = level_len (filter, filter_len, fi);
      gsize tl;
      gboolean fmore, tmore;

      if (is_level (filter + fi, fl, '#'))
        return TRUE;
      tl = level_len (topic, topic_len, ti);
      if (!is_level (filter + fi, fl, '+')
          && (fl != tl || memcmp (filter + fi, topic + ti, fl) != 0))
        return FALSE;
      fmore = fi + fl < filter_len;
      tmore = ti + tl < topic_len;
      if (!tmore)
        {
          if (!fmore)
            return TRUE;
          /* `sport/#` matches `sport`: `#` also stands for no level. */
          fi += fl + 1;
          return filter_len - fi == 1 && filter[fi] == '#';
        }
      if (!fmore)
        return FALSE;
      fi += fl + 1;
      ti += tl + 1;
    }
}

gboolean
mqtt_topic_filter_covers (const char *allowed,
                          gsize allowed_len,
                          const char *requested,
                          gsize requested_len)
{
  gsize ai = 0, ri = 0;

  if (allowed_len == 0 || requested_len == 0)
    return FALSE;
  /* A leading wildcard in `allowed` reaches no `$` topic, and a `requested`
   * whose first level is a literal `$...` matches only those. */
  if ((allowed[0] == '+' || allowed[0] == '#') && requested[0] == '$')
    return FALSE;

  for (;;)
    {
      gsize al = level_len (allowed, allowed_len, ai);
      gsize rl = level_len (requested, requested_len, ri);
      gboolean amore, rmore;

      if (is_level (allowed + ai, al, '#'))
        return TRUE;
      if (is_level (requested + ri, rl, '#'))
        {
          /* `requested` reaches every depth from here, no level at all
           * included, so only `#` covers it. But where no level at all would
           * leave an empty topic name (`#` first, or after one empty level
           * in `/#`), that case is void and `+/#` is as good. */
          gboolean void_parent = ri == 0 || (ri == 1 && requested[0] == '/');

          return void_parent && allowed_len - ai == 3
            && memcmp (allowed + ai, "+/#", 3) == 0;
        }
      if (is_level (allowed + ai, al, '+'))
        ;
      else if (is_wildcard_level (requested + ri, rl)
               || al != rl || memcmp (allowed + ai, requested + ri, al) != 0)
        return FALSE;
      amore = ai + al < allowed_len;
      rmore = ri + rl < requested_len;
      if (!rmore)
        {
          if (!amore)
            return TRUE;
          ai += al + 1;
          return allowed_len - ai == 1 && allowed[ai] == '#';
        }
      if (!amore)
        return FALSE;
      ai += al + 1;
      ri += rl + 1;
    }
}
