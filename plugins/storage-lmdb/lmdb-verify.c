/* storage-lmdb — the verification pass at open. A damaged page can send
 * LMDB's own code through a wild pointer, so the walk runs in a forked
 * child: the parent only reads its verdict (a line on a pipe and the exit
 * status, or the signal that killed it) and turns it into an error that
 * names the file, instead of crashing sluiced.
 *
 * The child opens the environment read-only, walks the free list, the main
 * database and every named database from the first key to the last (every
 * branch and leaf page), checks that keys come in strictly increasing order
 * (the free list by its integer keys)
 * and, in `logs`, that every key has the partition-and-offset shape. The
 * newest batch of each partition is CRC-checked too; a bad one is logged
 * (readers at its offset get the error) but does not stop the open: LMDB
 * commits are atomic, so it is damage, not a torn write to cut off.
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <errno.h>
#include <glib-unix.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERDICT_MAX 512

static void
say (int fd, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
say (int fd, const char *fmt, ...)
{
  char buf[VERDICT_MAX];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (n > 0 && write (fd, buf, MIN ((gsize) n, sizeof buf - 1)) < 0)
    return;
}

/* Key order as LMDB keeps it: the free list (dbi 0) has native size_t
 * keys; the others here use the default bytewise order. mdb_cmp is no help
 * for dbi 0 and 1, whose comparison LMDB sets up lazily. */
static int
compare_keys (MDB_dbi dbi, const MDB_val *a, const MDB_val *b)
{
  if (dbi == 0 && a->mv_size == sizeof (gsize) && b->mv_size == sizeof (gsize))
    {
      gsize x, y;
      memcpy (&x, a->mv_data, sizeof x);
      memcpy (&y, b->mv_data, sizeof y);
      return (x > y) - (x < y);
    }
  {
    gsize n = MIN (a->mv_size, b->mv_size);
    int c = memcmp (a->mv_data, b->mv_data, n);
    return c != 0 ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
  }
}

/* Is `value` the stored form of a batch whose CRC holds? */
static gboolean
batch_ok (const MDB_val *value)
{
  const guint8 *v = value->mv_data;

  return value->mv_size >= LMDB_BATCH_HEADER + SLUICE_BATCH_HEADER_SIZE
         && lmdb_get_be32 (v) == lmdb_batch_crc (v, value->mv_size);
}

static gboolean
log_key_ok (const MDB_val *key)
{
  const guint8 *nul = memchr (key->mv_data, 0, key->mv_size);

  return nul != NULL && nul != key->mv_data
         && (gsize) (nul - (const guint8 *) key->mv_data) + 1 + 4 + 8 == key->mv_size;
}

/* Same partition: everything up to the offset is equal. */
static gboolean
same_partition (const MDB_val *a, const MDB_val *b)
{
  return a->mv_size == b->mv_size && memcmp (a->mv_data, b->mv_data, a->mv_size - 8) == 0;
}

static int
walk_db (MDB_txn *txn, MDB_dbi dbi, const char *name, gboolean logs, guint64 *entries,
         int out)
{
  MDB_cursor *cur;
  MDB_val key, val, prev_key = { 0, NULL }, prev_val = { 0, NULL };
  int rc = mdb_cursor_open (txn, dbi, &cur);

  if (rc != 0)
    {
      say (out, "database '%s': %s", name, mdb_strerror (rc));
      return 1;
    }
  for (rc = mdb_cursor_get (cur, &key, &val, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT))
    {
      if (prev_key.mv_data != NULL && compare_keys (dbi, &prev_key, &key) >= 0)
        {
          say (out, "database '%s': keys out of order after entry %" G_GUINT64_FORMAT, name,
               *entries);
          return 1;
        }
      if (logs)
        {
          if (!log_key_ok (&key))
            {
              say (out, "database '%s': a key of %zu bytes is not a log key", name,
                   key.mv_size);
              return 1;
            }
          /* The newest batch of each partition: damage there is told at
           * start; every batch is checked again on every read. */
          if (prev_key.mv_data != NULL && !same_partition (&prev_key, &key)
              && !batch_ok (&prev_val))
            say (out, "stream '%s' partition %u: the newest batch (offset %" G_GUINT64_FORMAT
                 ") fails its CRC; reads at it report it\n", (const char *) prev_key.mv_data,
                 lmdb_get_be32 ((const guint8 *) prev_key.mv_data + prev_key.mv_size - 12),
                 lmdb_get_be64 ((const guint8 *) prev_key.mv_data + prev_key.mv_size - 8));
        }
      prev_key = key;
      prev_val = val;
      (*entries)++;
    }
  if (rc != MDB_NOTFOUND)
    {
      say (out, "database '%s': %s after entry %" G_GUINT64_FORMAT, name, mdb_strerror (rc),
           *entries);
      return 1;
    }
  if (logs && prev_key.mv_data != NULL && !batch_ok (&prev_val))
    say (out, "stream '%s' partition %u: the newest batch (offset %" G_GUINT64_FORMAT
         ") fails its CRC; reads at it report it\n", (const char *) prev_key.mv_data,
         lmdb_get_be32 ((const guint8 *) prev_key.mv_data + prev_key.mv_size - 12),
         lmdb_get_be64 ((const guint8 *) prev_key.mv_data + prev_key.mv_size - 8));
  mdb_cursor_close (cur);
  return 0;
}

/* The child: 0 when every page walked is sound, 1 with a verdict on `out`. */
static int
walk (const char *env_dir, guint64 map_size, int out)
{
  MDB_env *env;
  MDB_txn *txn;
  MDB_cursor *cur;
  MDB_val key, val;
  guint64 entries = 0;
  int rc;

  if ((rc = mdb_env_create (&env)) != 0 || (rc = mdb_env_set_maxdbs (env, 64)) != 0
      || (rc = mdb_env_set_mapsize (env, map_size)) != 0
      || (rc = mdb_env_open (env, env_dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0640)) != 0
      || (rc = mdb_txn_begin (env, NULL, MDB_RDONLY, &txn)) != 0)
    {
      say (out, "cannot open it: %s", mdb_strerror (rc));
      return 1;
    }
  /* dbi 0 is LMDB's free list, dbi 1 the main database naming the others. */
  if (walk_db (txn, 0, "(free list)", FALSE, &entries, out) != 0
      || walk_db (txn, 1, "(main)", FALSE, &entries, out) != 0)
    return 1;
  if ((rc = mdb_cursor_open (txn, 1, &cur)) != 0)
    {
      say (out, "main database: %s", mdb_strerror (rc));
      return 1;
    }
  for (rc = mdb_cursor_get (cur, &key, &val, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT))
    {
      char name[256];
      MDB_dbi dbi;
      int drc;

      if (key.mv_size == 0 || key.mv_size >= sizeof name || memchr (key.mv_data, 0, key.mv_size))
        {
          say (out, "main database: a database name of %zu bytes is damaged", key.mv_size);
          return 1;
        }
      memcpy (name, key.mv_data, key.mv_size);
      name[key.mv_size] = '\0';
      if ((drc = mdb_dbi_open (txn, name, 0, &dbi)) != 0)
        {
          say (out, "database '%s': %s", name, mdb_strerror (drc));
          return 1;
        }
      if (walk_db (txn, dbi, name, strcmp (name, "logs") == 0, &entries, out) != 0)
        return 1;
    }
  if (rc != MDB_NOTFOUND)
    {
      say (out, "main database: %s", mdb_strerror (rc));
      return 1;
    }
  /* No cleanup: the child exits at once. */
  return 0;
}

gboolean
lmdb_verify (const char *env_dir, guint64 map_size, GError **error)
{
  g_autoptr (GString) verdict = g_string_new (NULL);
  g_autofree char *file = g_build_filename (env_dir, "data.mdb", NULL);
  int fds[2], status = 0;
  pid_t pid;
  char buf[256];
  ssize_t n;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, NULL))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "cannot verify %s: no pipe",
                   file);
      return FALSE;
    }
  pid = fork ();
  if (pid < 0)
    {
      int saved = errno;
      close (fds[0]);
      close (fds[1]);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                   "cannot verify %s: fork: %s", file, g_strerror (saved));
      return FALSE;
    }
  if (pid == 0)
    {
      close (fds[0]);
      /* No core dumps for an expected crash on a damaged page. */
      signal (SIGABRT, SIG_DFL);
      _exit (walk (env_dir, map_size, fds[1]));
    }
  close (fds[1]);
  while ((n = read (fds[0], buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      if (verdict->len < VERDICT_MAX)
        g_string_append_len (verdict, buf, n);
    }
  close (fds[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      {
        int saved = errno;
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                     "cannot verify %s: waitpid: %s", file, g_strerror (saved));
        return FALSE;
      }

  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    {
      /* Sound pages, damaged batches: the hub starts and readers get the
       * error at those offsets. */
      g_auto (GStrv) lines = g_strsplit (verdict->str, "\n", -1);
      for (guint i = 0; lines[i] != NULL; i++)
        if (*lines[i] != '\0')
          g_warning ("storage lmdb: %s", lines[i]);
      return TRUE;
    }
  if (WIFSIGNALED (status))
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                 "%s is damaged: the verification pass crashed on a damaged page "
                 "(signal %d, %s)%s%s; restore the data directory from a backup, or salvage "
                 "what is readable with mdb_dump / mdb_load", file, WTERMSIG (status),
                 g_strsignal (WTERMSIG (status)), verdict->len ? ": " : "", verdict->str);
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                 "%s is damaged: %s; restore the data directory from a backup, or salvage "
                 "what is readable with mdb_dump / mdb_load", file,
                 verdict->len ? verdict->str : "the verification pass failed");
  return FALSE;
}
