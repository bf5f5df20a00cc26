-- reconcile repair.sql
-- format:       2
-- run id:       20260120T080000Z-0001
-- target table: "public"."tutorial_progress"
-- backup table: "public"."reconcile_backup_20260120t080000z_0001"
-- insert:       2 keys (missing_in_backend)
-- merge:        3 keys (local_ahead, diverged)
-- review:       4 keys and 1 certificate claims: see review.sql (not changed here)
--
-- One transaction. It loads the keys and their merged local progress into a temporary
-- table, then:
--   1. inserts the missing keys (certificate_earned = false) and records them in the backup
--      table as "did not exist"; a key the app inserted meanwhile is merged in step 3;
--   2. locks the existing rows of the other keys (SELECT ... FOR UPDATE, in id order): no
--      concurrent change can slip between the merge, the backup and the update;
--   3. merges local progress into each row as it is now (SPEC 3): union of chapter ids,
--      per-quiz maximum, maximum watch time, chapters_completed = size of the union (never
--      lower), completion_percentage recomputed from it, earliest started_at and
--      completed_at, latest last_accessed_at; total_chapters and certificate_earned never
--      change (reconcile.rules.MERGE_RULES, the same rules as the run's own merge);
--   4. backs up every row the merge changes (all columns, before the first application)
--      into the backup table, then updates those rows only (updated_at = now());
--   5. prints how many keys were inserted, merged and left unchanged.
-- Applying it again changes nothing: no row, no updated_at, no backup row.
--
-- Apply:     psql -v ON_ERROR_STOP=1 -f repair.sql "$DATABASE_URL"
--            or: reconcile apply RUN_DIR [--dry-run]  (adds lock_timeout/statement_timeout)
-- Roll back: psql -v ON_ERROR_STOP=1 -f rollback.sql "$DATABASE_URL"
-- The backup table stays after the run; drop it once the repair is accepted.

SET client_encoding = 'UTF8';
BEGIN ISOLATION LEVEL READ COMMITTED;

CREATE TEMP TABLE "reconcile_repair_input" (
    n                  integer PRIMARY KEY,
    action             text NOT NULL,
    user_id            text NOT NULL,
    tutorial_id        text NOT NULL,
    completed_chapters text[],
    chapters_completed integer,
    total_chapters     integer,
    quiz_scores        jsonb,
    total_watch_time   integer,
    started_at         timestamptz,
    completed_at       timestamptz,
    last_accessed_at   timestamptz,
    UNIQUE (user_id, tutorial_id)
) ON COMMIT DROP;
CREATE TEMP TABLE "reconcile_repair_result" (
    user_id     text NOT NULL,
    tutorial_id text NOT NULL,
    outcome     text NOT NULL
) ON COMMIT DROP;

-- Input: the keys and their merged local progress.
INSERT INTO pg_temp."reconcile_repair_input"
SELECT * FROM jsonb_to_recordset(E'[
{"n":1,"action":"insert","user_id":"o''hara\\"; DROP TABLE tutorial_progress; --<script>alert(1)</script>_x\\\\n$$","tutorial_id":"tut_with-under_scores","completed_chapters":["ch\\"2","ch''1"],"chapters_completed":2,"total_chapters":3,"quiz_scores":{},"total_watch_time":120,"started_at":null,"completed_at":null,"last_accessed_at":null},
{"n":2,"action":"insert","user_id":"u-missing","tutorial_id":"intro-to-rag","completed_chapters":["c1"],"chapters_completed":1,"total_chapters":4,"quiz_scores":{},"total_watch_time":60,"started_at":null,"completed_at":null,"last_accessed_at":null},
{"n":3,"action":"merge","user_id":"u-ahead","tutorial_id":"intro-to-rag","completed_chapters":["c1","c2"],"chapters_completed":2,"total_chapters":4,"quiz_scores":{},"total_watch_time":60,"started_at":null,"completed_at":null,"last_accessed_at":null},
{"n":4,"action":"merge","user_id":"u-div","tutorial_id":"intro-to-rag","completed_chapters":["c1","c3"],"chapters_completed":2,"total_chapters":4,"quiz_scores":{},"total_watch_time":120,"started_at":null,"completed_at":null,"last_accessed_at":null},
{"n":5,"action":"merge","user_id":"u-quiz","tutorial_id":"intro-to-rag","completed_chapters":["c1"],"chapters_completed":1,"total_chapters":4,"quiz_scores":{"q1":90},"total_watch_time":60,"started_at":null,"completed_at":null,"last_accessed_at":null}
]'::jsonb)
    AS r(n integer, action text, user_id text, tutorial_id text, completed_chapters text[], chapters_completed integer, total_chapters integer, quiz_scores jsonb, total_watch_time integer, started_at timestamptz, completed_at timestamptz, last_accessed_at timestamptz);

CREATE TABLE IF NOT EXISTS "public"."reconcile_backup_20260120t080000z_0001" (
    user_id      text        NOT NULL,
    tutorial_id  text        NOT NULL,
    existed      boolean     NOT NULL,  -- false: the repair inserted this key
    original     jsonb,                 -- the whole row before the first repair (to_jsonb)
    backed_up_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tutorial_id)
);

ANALYZE pg_temp."reconcile_repair_input";

-- 1. Insert missing keys; record them as "did not exist" in the backup.
WITH inserted AS (
    INSERT INTO "public"."tutorial_progress" AS t (
           user_id, tutorial_id, completed_chapters, chapters_completed, total_chapters,
           completion_percentage, quiz_scores, total_watch_time, certificate_earned,
           started_at, completed_at, last_accessed_at)
    SELECT i.user_id, i.tutorial_id, COALESCE(i.completed_chapters, '{}'), k.n,
           i.total_chapters,
           CASE WHEN i.total_chapters > 0 THEN LEAST(100, round(100.0 * k.n / i.total_chapters, 2)) ELSE 0 END,
           COALESCE(i.quiz_scores, '{}'), GREATEST(0, COALESCE(i.total_watch_time, 0)), false,
           i.started_at, i.completed_at, i.last_accessed_at
      FROM pg_temp."reconcile_repair_input" AS i
     CROSS JOIN LATERAL (SELECT GREATEST(0, i.chapters_completed,
                                         cardinality(i.completed_chapters)) AS n) AS k
     WHERE i.action = 'insert'
     ORDER BY i.n
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
    RETURNING t.user_id, t.tutorial_id
), recorded AS (
    INSERT INTO "public"."reconcile_backup_20260120t080000z_0001" (user_id, tutorial_id, existed)
    SELECT user_id, tutorial_id, false FROM inserted
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
)
INSERT INTO pg_temp."reconcile_repair_result" (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, 'inserted' FROM inserted;

-- 2. Lock the existing rows of the other keys, in id order.
SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM "public"."tutorial_progress" AS t
          JOIN pg_temp."reconcile_repair_input" AS i ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
         WHERE NOT EXISTS (SELECT 1 FROM pg_temp."reconcile_repair_result" AS r
                            WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id)
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- 3. Merge (SPEC 3) against the locked rows as they are now: c is the union of the chapter
--    ids, k the merged count.
CREATE TEMP TABLE "reconcile_repair_merge" ON COMMIT DROP AS
SELECT t.id, m.*,
       ROW(t.completed_chapters, t.chapters_completed, t.completion_percentage, t.quiz_scores, t.total_watch_time, t.started_at, t.completed_at, t.last_accessed_at) IS DISTINCT FROM ROW(m.completed_chapters, m.chapters_completed, m.completion_percentage, m.quiz_scores, m.total_watch_time, m.started_at, m.completed_at, m.last_accessed_at) AS changes
  FROM pg_temp."reconcile_repair_input" AS i
  JOIN "public"."tutorial_progress" AS t ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN i.completed_chapters IS NULL
                     OR t.completed_chapters @> i.completed_chapters
                   THEN t.completed_chapters
                   ELSE ARRAY(SELECT DISTINCT u.c COLLATE "C"
                                FROM unnest(t.completed_chapters || i.completed_chapters) AS u(c)
                               ORDER BY 1)
              END AS completed_chapters
       OFFSET 0) AS c  -- OFFSET 0: compute the union once, not once per use
 CROSS JOIN LATERAL (
       SELECT GREATEST(t.chapters_completed, i.chapters_completed,
                       cardinality(c.completed_chapters)) AS chapters_completed) AS k
 CROSS JOIN LATERAL (
       -- One expression per field, from reconcile.rules.MERGE_RULES.
       SELECT c."completed_chapters" AS "completed_chapters",
              k."chapters_completed" AS "chapters_completed",
              CASE WHEN t.total_chapters > 0 THEN LEAST(100, round(100.0 * k.chapters_completed / t.total_chapters, 2)) ELSE 0 END AS "completion_percentage",
              CASE WHEN jsonb_typeof(t."quiz_scores") = 'object'
                   THEN t."quiz_scores" || COALESCE((
                        SELECT jsonb_object_agg(l.key, l.value)
                          FROM jsonb_each(i."quiz_scores") AS l
                         WHERE CASE WHEN t."quiz_scores" -> l.key IS NULL THEN true
                                    WHEN jsonb_typeof(t."quiz_scores" -> l.key) = 'number'
                                     AND jsonb_typeof(l.value) = 'number'
                                    THEN l.value::numeric > (t."quiz_scores" -> l.key)::numeric
                                    ELSE false END), '{}')
                   ELSE t."quiz_scores"
              END AS "quiz_scores",
              GREATEST(t."total_watch_time", i."total_watch_time") AS "total_watch_time",
              LEAST(t."started_at", i."started_at") AS "started_at",
              LEAST(t."completed_at", i."completed_at") AS "completed_at",
              GREATEST(t."last_accessed_at", i."last_accessed_at") AS "last_accessed_at") AS m
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp."reconcile_repair_result" AS r
                    WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id);

-- 4. Back up the rows the merge changes (the first backup of a key wins), then update them.
INSERT INTO "public"."reconcile_backup_20260120t080000z_0001" (user_id, tutorial_id, existed, original)
SELECT t.user_id, t.tutorial_id, true, to_jsonb(t)
  FROM pg_temp."reconcile_repair_merge" AS m
  JOIN "public"."tutorial_progress" AS t ON t.id = m.id
 WHERE m.changes
    ON CONFLICT (user_id, tutorial_id) DO NOTHING;

WITH merged AS (
    UPDATE "public"."tutorial_progress" AS t
       SET completed_chapters = m.completed_chapters,
           chapters_completed = m.chapters_completed,
           completion_percentage = m.completion_percentage,
           quiz_scores = m.quiz_scores,
           total_watch_time = m.total_watch_time,
           started_at = m.started_at,
           completed_at = m.completed_at,
           last_accessed_at = m.last_accessed_at,
           updated_at = now()
      FROM pg_temp."reconcile_repair_merge" AS m
     WHERE t.id = m.id AND m.changes
    RETURNING t.user_id, t.tutorial_id
)
INSERT INTO pg_temp."reconcile_repair_result" (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, 'merged' FROM merged;

-- 5. What happened, per planned action.
SELECT i.action AS planned, COALESCE(r.outcome, 'unchanged') AS outcome, count(*) AS keys
  FROM pg_temp."reconcile_repair_input" AS i
  LEFT JOIN pg_temp."reconcile_repair_result" AS r ON r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id
 GROUP BY 1, 2
 ORDER BY 1, 2;

COMMIT;
