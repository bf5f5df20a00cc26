-- 5. What happened, per planned action.
SELECT i.action AS planned, COALESCE(r.outcome, 'unchanged') AS outcome, count(*) AS keys
  FROM pg_temp.{input} AS i
  LEFT JOIN pg_temp.{result} AS r ON r.user_id = i.user_id AND r.tutorial_id = i.tutorial_id
 GROUP BY 1, 2
 ORDER BY 1, 2;
