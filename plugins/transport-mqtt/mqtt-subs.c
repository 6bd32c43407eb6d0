/* transport-mqtt — the subscription index.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-subs.h"

#include <string.h>

G_DEFINE_QUARK (mqtt-subs-error-quark, mqtt_subs_error)

typedef enum {
  NODE_ROOT,
  NODE_EXACT,
  NODE_PLUS,
  NODE_HASH,
} NodeKind;

typedef struct _Node Node;
struct _Node
{
  Node *parent;
  char *level;                      /* NODE_EXACT: its key in parent->children */
  NodeKind kind;
  GHashTable *children;             /* level → Node*; NULL while empty */
  Node *plus;
  Node *hash;
  GPtrArray *plain;                 /* Entry*; NULL while empty */
  GHashTable *shares;               /* share name → Group*; NULL while empty */
};

typedef struct
{
  char *name;
  GQueue members;                   /* Entry* links; the head has the turn */
} Group;

typedef struct
{
  gpointer subscriber;
  char *filter;                     /* as subscribed; key of the subscriber's table */
  MqttSubOptions options;
  Node *node;
  Group *group;                     /* shared: its group; plain: NULL */
  guint pos;                        /* plain: index in node->plain */
  GList link;                       /* shared: in group->members */
} Entry;

struct _MqttSubs
{
  MqttTopicLimits limits;
  Node root;
  /* subscriber → GHashTable (filter → Entry*, which it owns) */
  GHashTable *subscribers;
  guint n_subs;
  guint n_nodes;
};

/* Shared deliveries are kept apart from the merge of plain subscriptions;
 * below this many, finding a subscriber's delivery by a linear scan is
 * cheaper than hashing. */
#define LINEAR_MERGE_MAX 8

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_free (entry->filter);
  g_free (entry);
}

static void
group_free (gpointer data)
{
  Group *group = data;

  /* The member links live in their entries, which go on their own. */
  g_free (group->name);
  g_free (group);
}

static Node *
node_new (MqttSubs *subs, Node *parent, NodeKind kind, const char *level)
{
  Node *node = g_new0 (Node, 1);

  node->parent = parent;
  node->kind = kind;
  node->level = g_strdup (level);
  subs->n_nodes++;
  return node;
}

/* The node's own storage only; children are the caller's business. */
static void
node_free (Node *node)
{
  g_clear_pointer (&node->children, g_hash_table_unref);
  g_clear_pointer (&node->plain, g_ptr_array_unref);
  g_clear_pointer (&node->shares, g_hash_table_unref);
  g_free (node->level);
  if (node->kind != NODE_ROOT)
    g_free (node);
}

static gboolean
node_is_empty (const Node *node)
{
  return (node->plain == NULL || node->plain->len == 0)
    && (node->shares == NULL || g_hash_table_size (node->shares) == 0)
    && (node->children == NULL || g_hash_table_size (node->children) == 0)
    && node->plus == NULL && node->hash == NULL;
}

/* Give back what an emptied node holds, then unlink and free every node
 * from `node` up that has nothing left: O(levels). */
static void
node_prune (MqttSubs *subs, Node *node)
{
  while (node != NULL)
    {
      Node *parent = node->parent;

      if (node->plain != NULL && node->plain->len == 0)
        g_clear_pointer (&node->plain, g_ptr_array_unref);
      if (node->shares != NULL && g_hash_table_size (node->shares) == 0)
        g_clear_pointer (&node->shares, g_hash_table_unref);
      if (node->children != NULL && g_hash_table_size (node->children) == 0)
        g_clear_pointer (&node->children, g_hash_table_unref);
      if (node->kind == NODE_ROOT || !node_is_empty (node))
        return;

      switch (node->kind)
        {
        case NODE_PLUS:
          parent->plus = NULL;
          break;
        case NODE_HASH:
          parent->hash = NULL;
          break;
        case NODE_EXACT:
          g_hash_table_remove (parent->children, node->level);
          break;
        case NODE_ROOT:
        default:
          g_assert_not_reached ();
        }
      node_free (node);
      subs->n_nodes--;
      node = parent;
    }
}

MqttSubs *
mqtt_subs_new (const MqttTopicLimits *limits)
{
  MqttSubs *subs = g_new0 (MqttSubs, 1);

  if (limits != NULL)
    subs->limits = *limits;
  subs->root.kind = NODE_ROOT;
  subs->subscribers = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                             NULL,
                                             (GDestroyNotify) g_hash_table_unref);
  return subs;
}

void
mqtt_subs_free (MqttSubs *subs)
{
  g_autoptr(GPtrArray) stack = NULL;

  if (subs == NULL)
    return;
  /* Entries first: they are referenced from the nodes but owned here. */
  g_hash_table_unref (subs->subscribers);

  /* Iteratively, not recursively: a filter may have tens of thousands of
   * levels. */
  stack = g_ptr_array_new ();
  g_ptr_array_add (stack, &subs->root);
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
        }
      if (node->plus != NULL)
        g_ptr_array_add (stack, node->plus);
      if (node->hash != NULL)
        g_ptr_array_add (stack, node->hash);
      node_free (node);
    }
  g_free (subs);
}

static gboolean
check_options (const MqttSubOptions *options, gboolean shared, GError **error)
{
  if (options->qos > 2 || options->retain_handling > 2
      || options->subscription_id > MQTT_SUBSCRIPTION_ID_MAX)
    {
      g_set_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_BAD_OPTIONS,
                   "subscription options out of range (QoS %u, retain "
                   "handling %u, subscription identifier %u)",
                   options->qos, options->retain_handling,
                   options->subscription_id);
      return FALSE;
    }
  if (shared && options->no_local)
    {
      g_set_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_SHARED_NO_LOCAL,
                   "no-local is not allowed on a shared subscription");
      return FALSE;
    }
  return TRUE;
}

static Entry *
find_entry (MqttSubs *subs,
            gpointer subscriber,
            const char *filter,
            gsize filter_len)
{
  GHashTable *mine = g_hash_table_lookup (subs->subscribers, subscriber);
  g_autofree char *key = NULL;

  /* A stored filter is valid UTF-8 and so has no NUL: one with a NUL is
   * none of them. */
  if (mine == NULL || memchr (filter, '\0', filter_len) != NULL)
    return NULL;
  key = g_strndup (filter, filter_len);
  return g_hash_table_lookup (mine, key);
}

/* The node for a filter proper, created as needed. */
static Node *
node_for_filter (MqttSubs *subs, const char *filter, gsize filter_len)
{
  g_autofree char *copy = g_strndup (filter, filter_len);
  Node *node = &subs->root;
  char *level = copy;

  for (;;)
    {
      char *slash = strchr (level, '/');
      Node *next;

      if (slash != NULL)
        *slash = '\0';
      if (strcmp (level, "+") == 0)
        {
          if (node->plus == NULL)
            node->plus = node_new (subs, node, NODE_PLUS, NULL);
          next = node->plus;
        }
      else if (strcmp (level, "#") == 0)
        {
          if (node->hash == NULL)
            node->hash = node_new (subs, node, NODE_HASH, NULL);
          next = node->hash;
        }
      else
        {
          if (node->children == NULL)
            node->children = g_hash_table_new (g_str_hash, g_str_equal);
          next = g_hash_table_lookup (node->children, level);
          if (next == NULL)
            {
              next = node_new (subs, node, NODE_EXACT, level);
              g_hash_table_insert (node->children, next->level, next);
            }
        }
      node = next;
      if (slash == NULL)
        return node;
      level = slash + 1;
    }
}

gboolean
mqtt_subs_subscribe (MqttSubs *subs,
                     gpointer subscriber,
                     const char *filter,
                     gsize filter_len,
                     const MqttSubOptions *options,
                     gboolean *existed,
                     GError **error)
{
  MqttTopicFilter parsed;
  GHashTable *mine;
  Entry *entry;

  g_return_val_if_fail (subs != NULL && options != NULL, FALSE);

  if (!mqtt_topic_filter_parse (filter, filter_len, &subs->limits, &parsed,
                                error))
    return FALSE;
  if (!check_options (options, parsed.share_name != NULL, error))
    return FALSE;

  entry = find_entry (subs, subscriber, filter, filter_len);
  if (existed != NULL)
    *existed = entry != NULL;
  if (entry != NULL)
    {
      /* Same filter, same node and group: only the options change. */
      entry->options = *options;
      return TRUE;
    }

  entry = g_new0 (Entry, 1);
  entry->subscriber = subscriber;
  entry->filter = g_strndup (filter, filter_len);
  entry->options = *options;
  entry->node = node_for_filter (subs, parsed.filter, parsed.filter_len);
  if (parsed.share_name != NULL)
    {
      Node *node = entry->node;
      g_autofree char *name = g_strndup (parsed.share_name,
                                         parsed.share_name_len);
      Group *group;

      if (node->shares == NULL)
        node->shares = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                              group_free);
      group = g_hash_table_lookup (node->shares, name);
      if (group == NULL)
        {
          group = g_new0 (Group, 1);
          group->name = g_steal_pointer (&name);
          g_queue_init (&group->members);
          g_hash_table_insert (node->shares, group->name, group);
        }
      entry->group = group;
      entry->link.data = entry;
      g_queue_push_tail_link (&group->members, &entry->link);
    }
  else
    {
      if (entry->node->plain == NULL)
        entry->node->plain = g_ptr_array_new ();
      entry->pos = entry->node->plain->len;
      g_ptr_array_add (entry->node->plain, entry);
    }

  mine = g_hash_table_lookup (subs->subscribers, subscriber);
  if (mine == NULL)
    {
      mine = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, entry_free);
      g_hash_table_insert (subs->subscribers, subscriber, mine);
    }
  g_hash_table_insert (mine, entry->filter, entry);
  subs->n_subs++;
  return TRUE;
}

/* Take the entry out of the trie (not out of its subscriber's table). */
static void
entry_detach (MqttSubs *subs, Entry *entry)
{
  Node *node = entry->node;

  if (entry->group != NULL)
    {
      Group *group = entry->group;

      g_queue_unlink (&group->members, &entry->link);
      if (g_queue_is_empty (&group->members))
        g_hash_table_remove (node->shares, group->name);
    }
  else
    {
      GPtrArray *plain = node->plain;

      /* Swap-remove: the last entry takes this one's place. */
      g_ptr_array_remove_index_fast (plain, entry->pos);
      if (entry->pos < plain->len)
        ((Entry *) plain->pdata[entry->pos])->pos = entry->pos;
    }
  subs->n_subs--;
  node_prune (subs, node);
}

gboolean
mqtt_subs_unsubscribe (MqttSubs *subs,
                       gpointer subscriber,
                       const char *filter,
                       gsize filter_len)
{
  Entry *entry = find_entry (subs, subscriber, filter, filter_len);
  GHashTable *mine;

  if (entry == NULL)
    return FALSE;
  entry_detach (subs, entry);
  mine = g_hash_table_lookup (subs->subscribers, subscriber);
  g_hash_table_remove (mine, entry->filter);
  if (g_hash_table_size (mine) == 0)
    g_hash_table_remove (subs->subscribers, subscriber);
  return TRUE;
}

guint
mqtt_subs_remove_subscriber (MqttSubs *subs, gpointer subscriber)
{
  GHashTable *mine = g_hash_table_lookup (subs->subscribers, subscriber);
  GHashTableIter iter;
  gpointer value;
  guint n;

  if (mine == NULL)
    return 0;
  n = g_hash_table_size (mine);
  g_hash_table_iter_init (&iter, mine);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    entry_detach (subs, value);
  g_hash_table_remove (subs->subscribers, subscriber);
  return n;
}

const MqttSubOptions *
mqtt_subs_lookup (MqttSubs *subs,
                  gpointer subscriber,
                  const char *filter,
                  gsize filter_len)
{
  Entry *entry = find_entry (subs, subscriber, filter, filter_len);

  return entry != NULL ? &entry->options : NULL;
}

void
mqtt_subs_foreach_of (MqttSubs *subs,
                      gpointer subscriber,
                      MqttSubsForeachFunc func,
                      gpointer user_data)
{
  GHashTable *mine = g_hash_table_lookup (subs->subscribers, subscriber);
  GHashTableIter iter;
  gpointer value;

  if (mine == NULL)
    return;
  g_hash_table_iter_init (&iter, mine);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Entry *entry = value;

      func (entry->filter, &entry->options, user_data);
    }
}

guint
mqtt_subs_count (MqttSubs *subs)
{
  return subs->n_subs;
}

guint
mqtt_subs_node_count (MqttSubs *subs)
{
  return subs->n_nodes;
}

/* A node still to walk and the index of the topic level it faces. */
typedef struct
{
  Node *node;
  gsize level;
} Pending;

void
mqtt_subs_match_init (MqttSubsMatch *match)
{
  memset (match, 0, sizeof *match);
  match->deliveries = g_array_new (FALSE, FALSE, sizeof (MqttSubsDelivery));
  match->ids = g_array_new (FALSE, FALSE, sizeof (guint32));
  match->topic = g_string_new (NULL);
  match->levels = g_array_new (FALSE, FALSE, sizeof (const char *));
  match->hits = g_ptr_array_new ();
  match->by_subscriber = g_hash_table_new (g_direct_hash, g_direct_equal);
  match->stack = g_array_new (FALSE, FALSE, sizeof (Pending));
}

void
mqtt_subs_match_clear (MqttSubsMatch *match)
{
  g_clear_pointer (&match->deliveries, g_array_unref);
  g_clear_pointer (&match->ids, g_array_unref);
  if (match->topic != NULL)
    g_string_free (match->topic, TRUE);
  match->topic = NULL;
  g_clear_pointer (&match->levels, g_array_unref);
  g_clear_pointer (&match->hits, g_ptr_array_unref);
  g_clear_pointer (&match->by_subscriber, g_hash_table_unref);
  g_clear_pointer (&match->stack, g_array_unref);
}

/* Pick the member whose turn it is among those that can take the message,
 * and move it to the back of the line. */
static void
pick_shared (Group *group,
             MqttSubsCanTakeFunc can_take,
             gpointer can_take_data,
             MqttSubsMatch *match)
{
  GList *link = group->members.head;
  MqttSubsDelivery delivery = { 0 };
  Entry *entry = NULL;

  if (can_take != NULL)
    {
      for (; link != NULL; link = link->next)
        {
          Entry *candidate = link->data;

          if (can_take (candidate->subscriber, candidate->options.qos,
                        can_take_data))
            break;
        }
      if (link == NULL)
        {
          link = group->members.head;
          delivery.all_busy = TRUE;
        }
    }
  entry = link->data;
  g_queue_unlink (&group->members, link);
  g_queue_push_tail_link (&group->members, link);

  delivery.subscriber = entry->subscriber;
  delivery.share_name = group->name;
  delivery.qos = entry->options.qos;
  delivery.retain_as_published = entry->options.retain_as_published;
  delivery.first_id = match->ids->len;
  if (entry->options.subscription_id != 0)
    {
      g_array_append_val (match->ids, entry->options.subscription_id);
      delivery.n_ids = 1;
    }
  g_array_append_val (match->deliveries, delivery);
}

/* The subscriptions held by one node that the topic matches. */
static void
collect (Node *node,
         gpointer publisher,
         MqttSubsCanTakeFunc can_take,
         gpointer can_take_data,
         MqttSubsMatch *match)
{
  if (node->plain != NULL)
    {
      for (guint i = 0; i < node->plain->len; i++)
        {
          Entry *entry = node->plain->pdata[i];

          if (publisher != NULL && entry->subscriber == publisher
              && entry->options.no_local)
            continue;
          g_ptr_array_add (match->hits, entry);
        }
    }
  if (node->shares != NULL)
    {
      GHashTableIter iter;
      gpointer group;

      g_hash_table_iter_init (&iter, node->shares);
      while (g_hash_table_iter_next (&iter, NULL, &group))
        pick_shared (group, can_take, can_take_data, match);
    }
}

static guint
find_plain_delivery (MqttSubsMatch *match, guint plain_start, gpointer subscriber)
{
  guint n = match->deliveries->len - plain_start;

  if (n <= LINEAR_MERGE_MAX)
    {
      for (guint i = plain_start; i < match->deliveries->len; i++)
        if (g_array_index (match->deliveries, MqttSubsDelivery, i).subscriber
            == subscriber)
          return i + 1;
      return 0;
    }
  if (g_hash_table_size (match->by_subscriber) == 0)
    {
      /* Just past the linear range: index what is there so far. */
      for (guint i = plain_start; i < match->deliveries->len; i++)
        g_hash_table_insert (match->by_subscriber,
                             g_array_index (match->deliveries,
                                            MqttSubsDelivery, i).subscriber,
                             GUINT_TO_POINTER (i + 1));
    }
  return GPOINTER_TO_UINT (g_hash_table_lookup (match->by_subscriber,
                                                subscriber));
}

/* One delivery per subscriber from the plain hits: the maximum QoS and every
 * subscription identifier (MQTT-3.3.4-2, -3). */
static void
merge_hits (MqttSubsMatch *match, gpointer publisher)
{
  guint plain_start = match->deliveries->len;
  guint32 *ids;
  guint next_id;

  for (guint i = 0; i < match->hits->len; i++)
    {
      Entry *entry = match->hits->pdata[i];
      guint at = find_plain_delivery (match, plain_start, entry->subscriber);
      MqttSubsDelivery *delivery;

      if (at == 0)
        {
          MqttSubsDelivery fresh = { 0 };

          fresh.subscriber = entry->subscriber;
          fresh.no_local = publisher == NULL;
          g_array_append_val (match->deliveries, fresh);
          at = match->deliveries->len;
          if (g_hash_table_size (match->by_subscriber) > 0)
            g_hash_table_insert (match->by_subscriber, entry->subscriber,
                                 GUINT_TO_POINTER (at));
        }
      delivery = &g_array_index (match->deliveries, MqttSubsDelivery, at - 1);
      delivery->qos = MAX (delivery->qos, entry->options.qos);
      delivery->retain_as_published |= entry->options.retain_as_published;
      delivery->no_local &= entry->options.no_local;
      if (entry->options.subscription_id != 0)
        delivery->n_ids++;
    }

  /* Lay the identifiers out contiguously per delivery, then fill them in a
   * second pass over the hits. */
  next_id = match->ids->len;
  for (guint i = plain_start; i < match->deliveries->len; i++)
    {
      MqttSubsDelivery *delivery = &g_array_index (match->deliveries,
                                                   MqttSubsDelivery, i);

      delivery->first_id = next_id;
      next_id += delivery->n_ids;
      delivery->n_ids = 0;
    }
  g_array_set_size (match->ids, next_id);
  ids = (guint32 *) (gpointer) match->ids->data;
  for (guint i = 0; i < match->hits->len; i++)
    {
      Entry *entry = match->hits->pdata[i];
      MqttSubsDelivery *delivery;

      if (entry->options.subscription_id == 0)
        continue;
      delivery = &g_array_index (match->deliveries, MqttSubsDelivery,
                                 find_plain_delivery (match, plain_start,
                                                      entry->subscriber) - 1);
      ids[delivery->first_id + delivery->n_ids++] = entry->options.subscription_id;
    }
}

void
mqtt_subs_match (MqttSubs *subs,
                 const char *topic,
                 gsize topic_len,
                 gpointer publisher,
                 MqttSubsCanTakeFunc can_take,
                 gpointer can_take_data,
                 MqttSubsMatch *match)
{
  const char **levels;
  gsize n_levels;
  gboolean dollar;
  Pending start = { &subs->root, 0 };

  g_array_set_size (match->deliveries, 0);
  g_array_set_size (match->ids, 0);
  g_ptr_array_set_size (match->hits, 0);
  if (g_hash_table_size (match->by_subscriber) > 0)
    g_hash_table_remove_all (match->by_subscriber);
  g_array_set_size (match->stack, 0);
  match->visited = 0;

  /* Split once into NUL-terminated levels, the children's keys. */
  g_string_truncate (match->topic, 0);
  g_string_append_len (match->topic, topic, topic_len);
  g_array_set_size (match->levels, 0);
  {
    char *p = match->topic->str;
    char *end = p + match->topic->len;

    g_array_append_val (match->levels, p);
    for (; p < end; p++)
      if (*p == '/')
        {
          char *next = p + 1;

          *p = '\0';
          g_array_append_val (match->levels, next);
        }
  }
  levels = (const char **) (gpointer) match->levels->data;
  n_levels = match->levels->len;
  dollar = topic_len > 0 && topic[0] == '$';

  /* Depth first with a stack of our own: the `+` children branch the walk,
   * and a topic may have thousands of levels. */
  g_array_append_val (match->stack, start);
  while (match->stack->len > 0)
    {
      Pending at = g_array_index (match->stack, Pending, match->stack->len - 1);
      Node *node = at.node;
      /* MQTT-4.7.2-1: no wildcard at the first level for a `$` topic. */
      gboolean wildcards = !(dollar && at.level == 0);

      g_array_set_size (match->stack, match->stack->len - 1);
      match->visited++;

      if (at.level == n_levels)
        {
          collect (node, publisher, can_take, can_take_data, match);
          /* `sport/#` matches `sport` as well. */
          if (node->hash != NULL)
            {
              match->visited++;
              collect (node->hash, publisher, can_take, can_take_data, match);
            }
          continue;
        }
      if (node->hash != NULL && wildcards)
        {
          match->visited++;
          collect (node->hash, publisher, can_take, can_take_data, match);
        }
      if (node->plus != NULL && wildcards)
        {
          Pending next = { node->plus, at.level + 1 };

          g_array_append_val (match->stack, next);
        }
      if (node->children != NULL)
        {
          Node *child = g_hash_table_lookup (node->children, levels[at.level]);

          if (child != NULL)
            {
              Pending next = { child, at.level + 1 };

              g_array_append_val (match->stack, next);
            }
        }
    }

  merge_hits (match, publisher);
}
