-- casenet on PostgreSQL, step 3 of 3: what the application role may do to the tables.
--
-- Run after casenet has started once as the owner role (step 2, which creates the
-- tables), and again after every casenet upgrade, connected to the casenet database as
-- a superuser or as the owner role:
--
--   psql "postgresql://postgres@DB_HOST:5432/casenet" -f ops/postgres/grant-app.sql
--
-- Optional names: -v owner_role=casenet_owner -v app_role=casenet_app
-- Safe to run again.

\set ON_ERROR_STOP on

\if :{?owner_role}
\else
  \set owner_role casenet_owner
\endif
\if :{?app_role}
\else
  \set app_role casenet_app
\endif

SELECT to_regclass('public.casenet_events') IS NULL AS tables_missing \gset
\if :tables_missing
  DO $$ BEGIN RAISE EXCEPTION
    'public.casenet_events does not exist: start casenet once as the owner role first';
  END $$;
\endif

-- Everything below is done as, and owned by, the owner role.
SET ROLE :"owner_role";

-- Rows of every casenet table: read models and projection positions are rewritten and
-- cleared on a rebuild; idempotency records expire; data keys are nulled on erasure.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
-- nextval() on casenet_events_notification_id_seq when an event is inserted.
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"app_role";

-- The event log and the data keys lose no row. UPDATE stays granted on casenet_events
-- only because PostgreSQL requires it for the LOCK TABLE ... IN EXCLUSIVE MODE that
-- every insert takes (that lock keeps the notification order gapless for readers);
-- the trigger below refuses any actual UPDATE. Data keys are updated (rotation, and
-- erasure, which nulls the key and keeps the row as a tombstone), never deleted.
REVOKE DELETE, TRUNCATE ON public.casenet_events FROM :"app_role";
REVOKE DELETE, TRUNCATE ON public.casenet_data_keys FROM :"app_role";

CREATE OR REPLACE FUNCTION public.casenet_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'casenet: % on % is refused: its rows are never changed or removed',
    TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;
REVOKE ALL ON FUNCTION public.casenet_refuse_change() FROM PUBLIC;

CREATE OR REPLACE TRIGGER casenet_events_append_only
  BEFORE UPDATE OR DELETE ON public.casenet_events
  FOR EACH ROW EXECUTE FUNCTION public.casenet_refuse_change();
CREATE OR REPLACE TRIGGER casenet_events_no_truncate
  BEFORE TRUNCATE ON public.casenet_events
  FOR EACH STATEMENT EXECUTE FUNCTION public.casenet_refuse_change();
CREATE OR REPLACE TRIGGER casenet_data_keys_no_delete
  BEFORE DELETE ON public.casenet_data_keys
  FOR EACH ROW EXECUTE FUNCTION public.casenet_refuse_change();
CREATE OR REPLACE TRIGGER casenet_data_keys_no_truncate
  BEFORE TRUNCATE ON public.casenet_data_keys
  FOR EACH STATEMENT EXECUTE FUNCTION public.casenet_refuse_change();

-- The library also creates an insert function that skips the table lock (its
-- POSTGRES_ENABLE_DB_FUNCTIONS path, which lets a log reader skip events); casenet
-- never calls it, and nobody else may.
SELECT to_regprocedure('public.es_insert_events_uuid(public.stored_event_uuid[])')
  IS NOT NULL AS has_insert_function \gset
\if :has_insert_function
  REVOKE ALL ON FUNCTION public.es_insert_events_uuid(public.stored_event_uuid[]) FROM PUBLIC;
\endif

RESET ROLE;
