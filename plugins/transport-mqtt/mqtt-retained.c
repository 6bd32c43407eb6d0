/* transport-mqtt — the retained-message index.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-retained.h"

#include <string.h>

typedef struct _Node Node;
struct _Node
{
  Node *parent;
  char *level;                      /* its key in parent->children */
  GHashTable *children;             /* level → Node*; NULL while empty */
  gpointer value;                   /* NULL: no retained message here */
};

struct _MqttRetained
{
  GDestroyNotify value_free;
  Node root;
  guint n_values;
  guint n_nodes;
  GString *scratch;                 /* a topic or filter split at `/` */
  GPtrArray *levels;                /* const char * into scratch */
  GString *topic;                   /* a topic rebuilt for a callback */
  GPtrArray *path;                  /* Node* from a node up to the root */
};

/* A node whose whole subtree matches (below a `#`). */
#define SUBTREE G_MAXSIZE

MqttRetained *
mqtt_retained_new (GDestroyNotify value_free)
{
  MqttRetained *retained = g_new0 (MqttRetained, 1);

  retained->value_free = value_free;
  retained->scratch = g_string_new (NULL);
  retained->levels = g_ptr_array_new ();
  retained->topic = g_string_new (NULL);
  retained->path = g_ptr_array_new ();
  return retained;
}

static void
drop_value (MqttRetained *retained, Node *node)
{
  gpointer value = g_steal_pointer (&node->value);

  if (value == NULL)
    return;
  retained->n_values--;
  if (retained->value_free != NULL)
    retained->value_free (value);
}

void
mqtt_retained_free (MqttRetained *retained)
{
  g_autoptr(GPtrArray) stack = NULL;

  if (retained == NULL)
    return;
  /* Iteratively: a topic may have tens of thousands of levels. */
  stack = g_ptr_array_new ();
  g_ptr_array_add (stack, &retained->root);
  while (stack->len > 0)
    {
      Node *node = g_ptr_array_steal_index_fast (stack, stack->len - 1);

      if (node->children != NULL)
        {
          GHashTableIter iter;
          gpointer child;

          g_hash_table_iter_init (&iter, node->children);
          while (g_hash_table_iter_next (&iter, NULL, &child))
            g_ptr_array_add (stack, child);
          g_hash_table_unref (node->children);
        }
      drop_value (retained, node);
      g_free (node->level);
      if (node != &retained->root)
        g_free (node);
    }
  g_string_free (retained->scratch, TRUE);
  g_ptr_array_unref (retained->levels);
  g_string_free (retained->topic, TRUE);
  g_ptr_array_unref (retained->path);
  g_free (retained);
}

/* Split into retained->levels: NUL-terminated copies of each level. */
static void
split (MqttRetained *retained, const char *text, gsize len)
{
  char *p, *end;

  g_string_truncate (retained->scratch, 0);
  g_string_append_len (retained->scratch, text, len);
  g_ptr_array_set_size (retained->levels, 0);
  p = retained->scratch->str;
  end = p + retained->scratch->len;
  g_ptr_array_add (retained->levels, p);
  for (; p < end; p++)
    if (*p == '/')
      {
        *p = '\0';
        g_ptr_array_add (retained->levels, p + 1);
      }
}

static Node *
find_node (MqttRetained *retained, const char *topic, gsize len, gboolean create)
{
  Node *node = &retained->root;

  split (retained, topic, len);
  for (guint i = 0; i < retained->levels->len; i++)
    {
      const char *level = retained->levels->pdata[i];
      Node *child = node->children != NULL
        ? g_hash_table_lookup (node->children, level) : NULL;

      if (child == NULL)
        {
          if (!create)
            return NULL;
          if (node->children == NULL)
            node->children = g_hash_table_new (g_str_hash, g_str_equal);
          child = g_new0 (Node, 1);
          child->parent = node;
          child->level = g_strdup (level);
          g_hash_table_insert (node->children, child->level, child);
          retained->n_nodes++;
        }
      node = child;
    }
  return node;
}

/* Free `node` and its ancestors while they hold nothing. O(levels). */
static void
prune (MqttRetained *retained, Node *node)
{
  while (node != &retained->root && node->value == NULL
         && (node->children == NULL || g_hash_table_size (node->children) == 0))
    {
      Node *parent = node->parent;

      g_clear_pointer (&node->children, g_hash_table_unref);
      g_hash_table_remove (parent->children, node->level);
      if (g_hash_table_size (parent->children) == 0)
        g_clear_pointer (&parent->children, g_hash_table_unref);
      g_free (node->level);
      g_free (node);
      retained->n_nodes--;
      node = parent;
    }
}

void
mqtt_retained_set (MqttRetained *retained,
                   const char *topic,
                   gsize topic_len,
                   gpointer value)
{
  Node *node;

  g_return_if_fail (retained != NULL && topic_len > 0);

  node = find_node (retained, topic, topic_len, value != NULL);
  if (node == NULL)
    return;
  drop_value (retained, node);
  if (value != NULL)
    {
      node->value = value;
      retained->n_values++;
    }
  else
    prune (retained, node);
}

gpointer
mqtt_retained_lookup (MqttRetained *retained,
                      const char *topic,
                      gsize topic_len)
{
  Node *node;

  if (topic_len == 0)
    return NULL;
  node = find_node (retained, topic, topic_len, FALSE);
  return node != NULL ? node->value : NULL;
}

guint
mqtt_retained_count (MqttRetained *retained)
{
  return retained->n_values;
}

guint
mqtt_retained_node_count (MqttRetained *retained)
{
  return retained->n_nodes;
}

typedef struct
{
  Node *node;
  gsize level;                      /* filter level faced, or SUBTREE */
} Pending;

typedef struct
{
  MqttRetained *retained;
  MqttRetainedFunc func;
  gpointer user_data;
  GArray *stack;                    /* Pending */
  GPtrArray *expired;               /* Node* the callback gave back */
  guint reported;
  guint visited;
} Walk;

static void
report (Walk *walk, Node *node)
{
  MqttRetained *retained = walk->retained;
  Node *at;

  if (node->value == NULL)
    return;
  g_ptr_array_set_size (retained->path, 0);
  for (at = node; at != &retained->root; at = at->parent)
    g_ptr_array_add (retained->path, at);
  g_string_truncate (retained->topic, 0);
  for (guint i = retained->path->len; i-- > 0;)
    {
      g_string_append (retained->topic,
                       ((Node *) retained->path->pdata[i])->level);
      if (i > 0)
        g_string_append_c (retained->topic, '/');
    }
  walk->reported++;
  if (!walk->func (retained->topic->str, retained->topic->len, node->value,
                   walk->user_data))
    g_ptr_array_add (walk->expired, node);
}

static void
push_children (Walk *walk, Node *node, gsize level, gboolean skip_dollar)
{
  GHashTableIter iter;
  gpointer value;

  if (node->children == NULL)
    return;
  g_hash_table_iter_init (&iter, node->children);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Node *child = value;
      Pending next = { child, level };

      /* MQTT-4.7.2-1: a first-level wildcard does not reach `$` topics. */
      if (skip_dollar && child->level[0] == '$')
        continue;
      g_array_append_val (walk->stack, next);
    }
}

static guint
walk_run (MqttRetained *retained,
          Pending start,
          MqttRetainedFunc func,
          gpointer user_data,
          guint *visited)
{
  Walk walk = { retained, func, user_data, NULL, NULL, 0, 0 };
  const char **levels = (const char **) retained->levels->pdata;
  gsize n_levels = retained->levels->len;

  walk.stack = g_array_new (FALSE, FALSE, sizeof (Pending));
  walk.expired = g_ptr_array_new ();
  g_array_append_val (walk.stack, start);
  while (walk.stack->len > 0)
    {
      Pending at = g_array_index (walk.stack, Pending, walk.stack->len - 1);
      const char *level;

      g_array_set_size (walk.stack, walk.stack->len - 1);
      walk.visited++;
      if (at.level == SUBTREE)
        {
          report (&walk, at.node);
          push_children (&walk, at.node, SUBTREE, FALSE);
          continue;
        }
      if (at.level == n_levels)
        {
          report (&walk, at.node);
          continue;
        }
      level = levels[at.level];
      if (strcmp (level, "#") == 0)
        {
          /* `sport/#` matches `sport` too. */
          report (&walk, at.node);
          push_children (&walk, at.node, SUBTREE, at.level == 0);
        }
      else if (strcmp (level, "+") == 0)
        push_children (&walk, at.node, at.level + 1, at.level == 0);
      else if (at.node->children != NULL)
        {
          Node *child = g_hash_table_lookup (at.node->children, level);

          if (child != NULL)
            {
              Pending next = { child, at.level + 1 };

              g_array_append_val (walk.stack, next);
            }
        }
    }

  /* The tree is not touched during the walk; expired messages go now. A
   * node still listed holds its value, so no earlier prune freed it. */
  for (guint i = 0; i < walk.expired->len; i++)
    {
      Node *node = walk.expired->pdata[i];

      drop_value (retained, node);
      prune (retained, node);
    }
  g_array_unref (walk.stack);
  g_ptr_array_unref (walk.expired);
  if (visited != NULL)
    *visited = walk.visited;
  return walk.reported;
}

guint
mqtt_retained_match (MqttRetained *retained,
                     const char *filter,
                     gsize filter_len,
                     MqttRetainedFunc func,
                     gpointer user_data,
                     guint *visited)
{
  Pending start = { &retained->root, 0 };

  g_return_val_if_fail (retained != NULL && func != NULL, 0);
  if (filter_len == 0)
    return 0;
  split (retained, filter, filter_len);
  return walk_run (retained, start, func, user_data, visited);
}

guint
mqtt_retained_foreach (MqttRetained *retained,
                       MqttRetainedFunc func,
                       gpointer user_data)
{
  Pending start = { &retained->root, SUBTREE };

  g_return_val_if_fail (retained != NULL && func != NULL, 0);
  return walk_run (retained, start, func, user_data, NULL);
}
