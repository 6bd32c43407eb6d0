# plugins/auth-key
