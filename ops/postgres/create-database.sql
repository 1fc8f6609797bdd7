-- casenet on PostgreSQL, step 1 of 3: the database and its two roles.
--
-- Run as a superuser (or a role with CREATEROLE and CREATEDB), before casenet's first
-- start. Passwords come in as psql variables, never written in this file:
--
--   psql "postgresql://postgres@DB_HOST:5432/postgres" \
--        -v owner_password="$CASENET_OWNER_PASSWORD" \
--        -v app_password="$CASENET_APP_PASSWORD" \
--        -f ops/postgres/create-database.sql
--
-- Optional names: -v dbname=casenet -v owner_role=casenet_owner -v app_role=casenet_app
-- Safe to run again: it creates what is missing and sets the passwords again.
--
-- casenet_owner owns the database, its schema and (after step 2) every table: it is
-- the role that creates and upgrades tables. casenet_app is the role the servers and
-- projection workers log in as: it may connect and use the schema, and step 3 gives it
-- rows to read and write, never DDL. See ops/README.md.

\set ON_ERROR_STOP on

\if :{?dbname}
\else
  \set dbname casenet
\endif
\if :{?owner_role}
\else
  \set owner_role casenet_owner
\endif
\if :{?app_role}
\else
  \set app_role casenet_app
\endif
\if :{?owner_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'give the owner role a password: psql -v owner_password=...'; END $$;
\endif
\if :{?app_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'give the app role a password: psql -v app_password=...'; END $$;
\endif

-- The owner: creates and upgrades casenet's tables; nothing else on the server.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') AS role_missing \gset
\if :role_missing
  CREATE ROLE :"owner_role" LOGIN PASSWORD :'owner_password';
\else
  ALTER ROLE :"owner_role" LOGIN PASSWORD :'owner_password';
\endif
ALTER ROLE :"owner_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- The application: reads and writes rows, owns nothing.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') AS role_missing \gset
\if :role_missing
  CREATE ROLE :"app_role" LOGIN PASSWORD :'app_password';
\else
  ALTER ROLE :"app_role" LOGIN PASSWORD :'app_password';
\endif
ALTER ROLE :"app_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- The database, owned by the owner; only the two roles may connect.
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') AS db_missing \gset
\if :db_missing
  CREATE DATABASE :"dbname" OWNER :"owner_role";
\else
  ALTER DATABASE :"dbname" OWNER TO :"owner_role";
\endif
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"dbname" TO :"app_role";

\connect :"dbname"

-- One schema, public (the library names its tables public.casenet_events): owned by the
-- owner, closed to everyone else (PostgreSQL 14 and older let PUBLIC create in it),
-- usable by the app. The app may not create anything in it.
ALTER SCHEMA public OWNER TO :"owner_role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";
