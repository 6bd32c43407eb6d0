/* storage-file — blobs: `{data_dir}/blobs/{name}`, written to a temporary
 * file in `{data_dir}/blob-tmp/` and renamed into place on commit, so a
 * reader sees the old blob or the new one, never a partial one.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _FileBlobs {
  char *root;
  char *tmp_dir;
};

struct _SluiceBlobWriter {
  int fd;
  char *tmp_path;
  char *path;
};

static void
writer_free (SluiceBlobWriter *w)
{
  if (w->fd >= 0)
    close (w->fd);
  if (w->tmp_path != NULL)
    unlink (w->tmp_path);
  g_free (w->tmp_path);
  g_free (w->path);
  g_free (w);
}

/* Names are `/`-separated relative paths without empty, `.` or `..`
 * segments, so every blob stays inside the blobs directory. */
static char *
blob_path (FileBlobs *blobs, const char *name, GError **error)
{
  g_auto (GStrv) parts = NULL;

  if (name == NULL || *name == '\0' || *name == '/' || g_str_has_suffix (name, "/")
      || !g_utf8_validate (name, -1, NULL))
    goto bad;
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0 || strcmp (parts[i], "..") == 0)
      goto bad;
  return g_build_filename (blobs->root, name, NULL);

bad:
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "invalid blob name '%s'",
               name && g_utf8_validate (name, -1, NULL) ? name : "?");
  return NULL;
}

FileBlobs *
file_blobs_open (const char *data_dir, GError **error)
{
  FileBlobs *blobs = g_new0 (FileBlobs, 1);
  g_autoptr (GDir) dir = NULL;
  const char *name;

  blobs->root = g_build_filename (data_dir, "blobs", NULL);
  blobs->tmp_dir = g_build_filename (data_dir, "blob-tmp", NULL);
  if (!file_mkdir_durable (blobs->root, error) || !file_mkdir_durable (blobs->tmp_dir, error))
    goto fail;
  /* Leftovers of writers that never committed (a crash). */
  dir = g_dir_open (blobs->tmp_dir, 0, error);
  if (dir == NULL)
    goto fail;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (blobs->tmp_dir, name, NULL);
      if (unlink (path) < 0)
        g_message ("blobs: cannot remove leftover %s: %s", path, g_strerror (errno));
    }
  return blobs;

fail:
  file_blobs_close (blobs);
  return NULL;
}

void
file_blobs_close (FileBlobs *blobs)
{
  if (blobs == NULL)
    return;
  g_free (blobs->root);
  g_free (blobs->tmp_dir);
  g_free (blobs);
}

SluiceBlobWriter *
file_blobs_open_write (FileBlobs *blobs, const char *name, GError **error)
{
  g_autofree char *path = blob_path (blobs, name, error);
  SluiceBlobWriter *w;

  if (path == NULL)
    return NULL;
  w = g_new0 (SluiceBlobWriter, 1);
  w->path = g_steal_pointer (&path);
  w->tmp_path = g_build_filename (blobs->tmp_dir, "blob-XXXXXX", NULL);
  w->fd = g_mkstemp_full (w->tmp_path, O_RDWR | O_CLOEXEC, 0640);
  if (w->fd < 0)
    {
      file_set_io_error (error, errno, "cannot create", w->tmp_path);
      g_clear_pointer (&w->tmp_path, g_free);
      writer_free (w);
      return NULL;
    }
  return w;
}

gboolean
file_blobs_write (FileBlobs *blobs, SluiceBlobWriter *w, const guint8 *data, gsize len,
                  GError **error)
{
  return file_write_all (w->fd, data, len, w->tmp_path, error);
}

gboolean
file_blobs_commit (FileBlobs *blobs, SluiceBlobWriter *w, GError **error)
{
  g_autofree char *parent = g_path_get_dirname (w->path);
  gboolean ok = FALSE;

  if (fsync (w->fd) < 0)
    {
      file_set_io_error (error, errno, "cannot sync", w->tmp_path);
      goto out;
    }
  if (!file_mkdir_durable (parent, error))
    goto out;
  if (rename (w->tmp_path, w->path) < 0)
    {
      file_set_io_error (error, errno, "cannot rename to", w->path);
      goto out;
    }
  g_clear_pointer (&w->tmp_path, g_free);
  ok = file_fsync_dir (parent, error);

out:
  writer_free (w);
  return ok;
}

void
file_blobs_abort (FileBlobs *blobs, SluiceBlobWriter *w)
{
  writer_free (w);
}

static void
set_not_found (GError **error, const char *name)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND, "no blob named '%s'", name);
}

GBytes *
file_blobs_read (FileBlobs *blobs, const char *name, guint64 offset, gsize max_bytes,
                 guint64 *total_size, GError **error)
{
  g_autofree char *path = blob_path (blobs, name, error);
  g_autofree guint8 *buf = NULL;
  struct stat st;
  gsize n = 0;
  int fd;

  if (path == NULL)
    return NULL;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        set_not_found (error, name);
      else
        file_set_io_error (error, errno, "cannot open", path);
      return NULL;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      set_not_found (error, name);
      return NULL;
    }
  if (total_size != NULL)
    *total_size = (guint64) st.st_size;
  if (offset < (guint64) st.st_size)
    n = (gsize) MIN ((guint64) max_bytes, (guint64) st.st_size - offset);
  buf = g_malloc (n + 1);
  if (n > 0 && !file_pread_all (fd, buf, n, offset, path, error))
    {
      close (fd);
      return NULL;
    }
  close (fd);
  return g_bytes_new_take (g_steal_pointer (&buf), n);
}

gboolean
file_blobs_delete (FileBlobs *blobs, const char *name, GError **error)
{
  g_autofree char *path = blob_path (blobs, name, error);
  g_autofree char *parent = NULL;
  struct stat st;

  if (path == NULL)
    return FALSE;
  if (lstat (path, &st) < 0 || !S_ISREG (st.st_mode))
    {
      set_not_found (error, name);
      return FALSE;
    }
  if (unlink (path) < 0)
    {
      if (errno == ENOENT)
        set_not_found (error, name);
      else
        file_set_io_error (error, errno, "cannot remove", path);
      return FALSE;
    }
  parent = g_path_get_dirname (path);
  return file_fsync_dir (parent, error);
}

/* Names of the files under `dir` (relative to the blobs root) into `out`. */
static gboolean
list_tree (const char *root, const char *rel, GPtrArray *out, GError **error)
{
  g_autofree char *dir_path = rel ? g_build_filename (root, rel, NULL) : g_strdup (root);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, error);
  const char *name;

  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child_rel = rel ? g_strconcat (rel, "/", name, NULL) : g_strdup (name);
      g_autofree char *child = g_build_filename (root, child_rel, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        {
          if (!list_tree (root, child_rel, out, error))
            return FALSE;
        }
      else if (g_file_test (child, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (out, g_steal_pointer (&child_rel));
    }
  return TRUE;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

gboolean
file_blobs_list (FileBlobs *blobs, const char *prefix, GPtrArray *names_out,
                 GError **error)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func (g_free);

  if (!list_tree (blobs->root, NULL, all, error))
    return FALSE;
  g_ptr_array_sort (all, compare_names);
  for (guint i = 0; i < all->len; i++)
    if (prefix == NULL || g_str_has_prefix (all->pdata[i], prefix))
      g_ptr_array_add (names_out, g_steal_pointer (&all->pdata[i]));
  return TRUE;
}
