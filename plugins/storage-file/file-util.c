/* storage-file — small I/O helpers: whole writes, reads and durable renames.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Linux's UIO_MAXIOV; IOV_MAX itself needs feature macros a plugin does not
 * set (it includes only the SDK). */
#define FILE_IOV_MAX 1024

void
file_set_io_error (GError **error, int saved_errno, const char *what, const char *path)
{
  if (saved_errno == ENOSPC || saved_errno == EDQUOT)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                 "%s %s: disk full (%s)", what, path, g_strerror (saved_errno));
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                 "%s %s: %s", what, path, g_strerror (saved_errno));
}

gboolean
file_write_all (int fd, const void *data, gsize len, const char *path, GError **error)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          file_set_io_error (error, errno, "cannot write", path);
          return FALSE;
        }
      p += n;
      len -= n;
    }
  return TRUE;
}

gboolean
file_writev_all (int fd, struct iovec *iov, int n_iov, const char *path, GError **error)
{
  while (n_iov > 0)
    {
      ssize_t n = writev (fd, iov, MIN (n_iov, FILE_IOV_MAX));
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          file_set_io_error (error, errno, "cannot write", path);
          return FALSE;
        }
      /* Skip what went out; a partial write resumes inside an iovec. */
      while (n_iov > 0 && (gsize) n >= iov->iov_len)
        {
          n -= iov->iov_len;
          iov++;
          n_iov--;
        }
      if (n_iov > 0)
        {
          iov->iov_base = (guint8 *) iov->iov_base + n;
          iov->iov_len -= n;
        }
    }
  return TRUE;
}

gboolean
file_pread_all (int fd, void *buf, gsize len, guint64 pos, const char *path,
                GError **error)
{
  guint8 *p = buf;

  while (len > 0)
    {
      ssize_t n = pread (fd, p, len, (off_t) pos);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          file_set_io_error (error, errno, "cannot read", path);
          return FALSE;
        }
      if (n == 0)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                       "cannot read %s: unexpected end of file at %" G_GUINT64_FORMAT,
                       path, pos);
          return FALSE;
        }
      p += n;
      len -= n;
      pos += n;
    }
  return TRUE;
}

gboolean
file_fsync_dir (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      file_set_io_error (error, errno, "cannot open directory", path);
      return FALSE;
    }
  if (fsync (fd) < 0)
    {
      int saved = errno;
      close (fd);
      file_set_io_error (error, saved, "cannot sync directory", path);
      return FALSE;
    }
  close (fd);
  return TRUE;
}

gboolean
file_mkdir_durable (const char *path, GError **error)
{
  struct stat st;

  if (stat (path, &st) == 0)
    {
      if (S_ISDIR (st.st_mode))
        return TRUE;
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                   "cannot create directory %s: a file of that name exists", path);
      return FALSE;
    }

  g_autofree char *parent = g_path_get_dirname (path);
  if (g_strcmp0 (parent, path) != 0 && !file_mkdir_durable (parent, error))
    return FALSE;

  if (mkdir (path, 0750) < 0 && errno != EEXIST)
    {
      file_set_io_error (error, errno, "cannot create directory", path);
      return FALSE;
    }
  /* The new entry lives in the parent: it is durable once the parent is. */
  return file_fsync_dir (parent, error);
}

gboolean
file_replace_contents (const char *path, const void *contents, gsize len, GError **error)
{
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

  if (fd < 0)
    {
      file_set_io_error (error, errno, "cannot create", tmp);
      return FALSE;
    }
  if (!file_write_all (fd, contents, len, tmp, error))
    goto fail;
  if (fsync (fd) < 0)
    {
      file_set_io_error (error, errno, "cannot sync", tmp);
      goto fail;
    }
  close (fd);
  fd = -1;
  if (rename (tmp, path) < 0)
    {
      file_set_io_error (error, errno, "cannot rename to", path);
      goto fail;
    }
  return file_fsync_dir (dir, error);

fail:
  if (fd >= 0)
    close (fd);
  unlink (tmp);
  return FALSE;
}

gboolean
file_remove_tree (const char *path, GError **error)
{
  struct stat st;

  if (lstat (path, &st) < 0)
    {
      if (errno == ENOENT)
        return TRUE;
      file_set_io_error (error, errno, "cannot stat", path);
      return FALSE;
    }
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      if (dir == NULL)
        {
          file_set_io_error (error, errno, "cannot open directory", path);
          return FALSE;
        }
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          if (!file_remove_tree (child, error))
            return FALSE;
        }
      if (rmdir (path) < 0 && errno != ENOENT)
        {
          file_set_io_error (error, errno, "cannot remove directory", path);
          return FALSE;
        }
      return TRUE;
    }
  if (unlink (path) < 0 && errno != ENOENT)
    {
      file_set_io_error (error, errno, "cannot remove", path);
      return FALSE;
    }
  return TRUE;
}
