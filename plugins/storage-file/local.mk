# plugins/storage-file
