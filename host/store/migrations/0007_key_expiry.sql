-- Keys may expire: a key past `expires_at` is refused like a revoked one (NULL: never).
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
