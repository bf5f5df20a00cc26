-- reconcile rollback.sql
-- format:       2
-- run id:       20260120T080000Z-0001
-- target table: "public"."tutorial_progress"
-- backup table: "public"."reconcile_backup_20260120t080000z_0001"
--
-- Returns every key that repair.sql changed to its state before repair.sql was FIRST applied:
--   * rows repair.sql inserted are deleted;
--   * rows it merged get every column back (id, progress, created_at, updated_at);
--   * a merged row deleted since then is inserted again.
-- Changes made to those keys AFTER the repair (by users or the app) are LOST. Keys the
-- repair did not change are not touched. Running it twice changes nothing the second time.
-- If the backup table does not exist (repair.sql was never applied, or the backup was
-- dropped) it stops with an error and changes nothing.
--
-- Run: psql -v ON_ERROR_STOP=1 -f rollback.sql "$DATABASE_URL"
-- The backup table is kept; once satisfied: DROP TABLE "public"."reconcile_backup_20260120t080000z_0001";

SET client_encoding = 'UTF8';
BEGIN ISOLATION LEVEL READ COMMITTED;

DO 'BEGIN IF to_regclass(''"public"."reconcile_backup_20260120t080000z_0001"'') IS NULL THEN RAISE EXCEPTION USING MESSAGE = ''reconcile rollback: backup table "public"."reconcile_backup_20260120t080000z_0001" does not exist: repair.sql was never applied (or its backup was dropped); nothing was rolled back''; END IF; END';

SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM "public"."tutorial_progress" AS t
          JOIN "public"."reconcile_backup_20260120t080000z_0001" AS b ON t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- Rows the repair inserted.
DELETE FROM "public"."tutorial_progress" AS t
 USING "public"."reconcile_backup_20260120t080000z_0001" AS b
 WHERE NOT b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id;

-- Rows the repair merged: every column from the backup.
UPDATE "public"."tutorial_progress" AS t
   SET (id, user_id, tutorial_id, completed_chapters, chapters_completed, total_chapters, completion_percentage, quiz_scores, total_watch_time, certificate_earned, started_at, completed_at, last_accessed_at, created_at, updated_at) = (r.id, r.user_id, r.tutorial_id, r.completed_chapters, r.chapters_completed, r.total_chapters, r.completion_percentage, r.quiz_scores, r.total_watch_time, r.certificate_earned, r.started_at, r.completed_at, r.last_accessed_at, r.created_at, r.updated_at)
  FROM "public"."reconcile_backup_20260120t080000z_0001" AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::"public"."tutorial_progress", b.original) AS r
 WHERE b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
   AND ROW(t.id, t.user_id, t.tutorial_id, t.completed_chapters, t.chapters_completed, t.total_chapters, t.completion_percentage, t.quiz_scores, t.total_watch_time, t.certificate_earned, t.started_at, t.completed_at, t.last_accessed_at, t.created_at, t.updated_at) IS DISTINCT FROM ROW(r.id, r.user_id, r.tutorial_id, r.completed_chapters, r.chapters_completed, r.total_chapters, r.completion_percentage, r.quiz_scores, r.total_watch_time, r.certificate_earned, r.started_at, r.completed_at, r.last_accessed_at, r.created_at, r.updated_at);

-- Merged rows deleted since the repair.
INSERT INTO "public"."tutorial_progress"
SELECT r.*
  FROM "public"."reconcile_backup_20260120t080000z_0001" AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::"public"."tutorial_progress", b.original) AS r
 WHERE b.existed
   AND NOT EXISTS (SELECT 1 FROM "public"."tutorial_progress" AS t
                    WHERE t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id)
 ORDER BY r.id;

COMMIT;
