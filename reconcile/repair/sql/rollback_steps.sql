{check};

SELECT count(*) AS locked_rows
  FROM (SELECT 1
          FROM {table} AS t
          JOIN {backup} AS b ON t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
         ORDER BY t.id
           FOR UPDATE OF t) AS locked;

-- Rows the repair inserted.
DELETE FROM {table} AS t
 USING {backup} AS b
 WHERE NOT b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id;

-- Rows the repair merged: every column from the backup.
UPDATE {table} AS t
   SET ({all}) = ({restored})
  FROM {backup} AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, b.original) AS r
 WHERE b.existed AND t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id
   AND ROW({current_all}) IS DISTINCT FROM ROW({restored});

-- Merged rows deleted since the repair.
INSERT INTO {table}
SELECT r.*
  FROM {backup} AS b
 CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, b.original) AS r
 WHERE b.existed
   AND NOT EXISTS (SELECT 1 FROM {table} AS t
                    WHERE t.user_id = b.user_id AND t.tutorial_id = b.tutorial_id)
 ORDER BY r.id;
