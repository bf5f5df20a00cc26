ANALYZE pg_temp.{input};

-- 1. Insert missing keys; record them as "did not exist" in the backup.
WITH inserted AS (
    INSERT INTO {table} AS t (
           user_id, tutorial_id, completed_chapters, chapters_completed, total_chapters,
           completion_percentage, quiz_scores, total_watch_time, certificate_earned,
           started_at, completed_at, last_accessed_at)
    SELECT i.user_id, i.tutorial_id, COALESCE(i.completed_chapters, '{{}}'), k.n,
           i.total_chapters,
           {insert_completion},
           COALESCE(i.quiz_scores, '{{}}'), GREATEST(0, COALESCE(i.total_watch_time, 0)), false,
           i.started_at, i.completed_at, i.last_accessed_at
      FROM pg_temp.{input} AS i
     CROSS JOIN LATERAL (SELECT GREATEST(0, i.chapters_completed,
                                         cardinality(i.completed_chapters)) AS n) AS k
     WHERE i.action = 'insert'
     ORDER BY i.n
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
    RETURNING t.user_id, t.tutorial_id
), recorded AS (
    INSERT INTO {backup} (user_id, tutorial_id, existed)
    SELECT user_id, tutorial_id, false FROM inserted
        ON CONFLICT (user_id, tutorial_id) DO NOTHING
)
INSERT INTO pg_temp.{result} (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, '{inserted}' FROM inserted;

-- 2. Lock the existing rows of the other keys, in id order.
SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM {table} AS t
          JOIN pg_temp.{input} AS i ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
         WHERE NOT EXISTS (SELECT 1 FROM pg_temp.{result} AS r
                            WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id)
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- 3. Merge (SPEC 3) against the locked rows as they are now: c is the union of the chapter
--    ids, k the merged count.
CREATE TEMP TABLE {merge} ON COMMIT DROP AS
SELECT t.id, m.*,
       ROW({current}) IS DISTINCT FROM ROW({merged}) AS changes
  FROM pg_temp.{input} AS i
  JOIN {table} AS t ON t.user_id = i.user_id AND t.tutorial_id = i.tutorial_id
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
       SELECT {merged_columns}) AS m
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp.{result} AS r
                    WHERE r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id);

-- 4. Back up the rows the merge changes (the first backup of a key wins), then update them.
INSERT INTO {backup} (user_id, tutorial_id, existed, original)
SELECT t.user_id, t.tutorial_id, true, to_jsonb(t)
  FROM pg_temp.{merge} AS m
  JOIN {table} AS t ON t.id = m.id
 WHERE m.changes
    ON CONFLICT (user_id, tutorial_id) DO NOTHING;

WITH merged AS (
    UPDATE {table} AS t
       SET {assignments},
           updated_at = now()
      FROM pg_temp.{merge} AS m
     WHERE t.id = m.id AND m.changes
    RETURNING t.user_id, t.tutorial_id
)
INSERT INTO pg_temp.{result} (user_id, tutorial_id, outcome)
SELECT user_id, tutorial_id, '{merged_outcome}' FROM merged;
