-- The compose file's PostgreSQL holds two databases: vidpipe's tables (POSTGRES_DB) and the
-- Dagster instance's storage.
CREATE DATABASE dagster;
