-- reconcile review.sql
-- format:       2
-- run id:       20260120T080000Z-0001
-- target table: "public"."tutorial_progress"
-- entries:      4 keys to review, 1 certificate claims
--
-- Nothing in this file runs: every line is a comment. For each entry read the reason,
-- look at the row (and the user's local export) and, only if the suggested fix is right,
-- copy the statement without its leading "-- " and run it yourself.
-- Ids are SQL literals; an id holding line breaks or other invisible characters is written
-- as (E'["..."]'::jsonb ->> 0), which yields the exact id.

-- [invalid_backend] user_id "u-badback", tutorial_id "intro-to-rag", backend id 11
-- reason: completion_percentage is 120.0, must be within 0..100
-- note: completion_percentage outside 0..100: recompute it from the chapters
-- fix:
-- UPDATE "public"."tutorial_progress"
--    SET completion_percentage = CASE WHEN total_chapters > 0 THEN LEAST(100, round(100.0 * chapters_completed / total_chapters, 2)) ELSE 0 END,
--        updated_at = now()
--  WHERE id = 11 AND user_id = 'u-badback' AND tutorial_id = 'intro-to-rag';

-- [conflict] user_id "u-conf", tutorial_id "intro-to-rag", backend id 9
-- reason: total_chapters differs: local 5, backend 4
-- note: total_chapters is 4 in the backend and 5 locally; if the local value is right, set it and recompute completion, then let the next run merge the rest
-- fix:
-- UPDATE "public"."tutorial_progress"
--    SET total_chapters = 5,
--        completion_percentage = CASE WHEN 5 > 0 THEN LEAST(100, round(100.0 * chapters_completed / 5, 2)) ELSE 0 END,
--        updated_at = now()
--  WHERE id = 9 AND user_id = 'u-conf' AND tutorial_id = 'intro-to-rag';

-- [conflict] user_id "u-old-build", tutorial_id "intro-to-rag", backend id 4
-- reason: the repair cannot be written faithfully: the repaired row would fail validation (chapters_completed 3 differs from the 2 chapter ids in completed_chapters)
-- fix: no automatic fix; compare the row with the local record:
-- SELECT * FROM "public"."tutorial_progress" WHERE id = 4 AND user_id = 'u-old-build' AND tutorial_id = 'intro-to-rag';

-- [invalid_backend] user_id "u-overcount", tutorial_id "intro-to-rag", backend id 12
-- reason: chapters_completed 9 exceeds total_chapters 4
-- note: chapters_completed exceeds total_chapters: check the tutorial's real chapter count
-- fix: no automatic fix; compare the row with the local record:
-- SELECT * FROM "public"."tutorial_progress" WHERE id = 12 AND user_id = 'u-overcount' AND tutorial_id = 'intro-to-rag';

-- [certificate claim] user_id "u-cert", tutorial_id "intro-to-rag", backend id 14
-- reason: a local record says certificateEarned = true, the backend row does not; a repair never grants a certificate.
-- fix: only after a person has checked that the user earned it:
-- UPDATE "public"."tutorial_progress"
--    SET certificate_earned = true,
--        updated_at = now()
--  WHERE id = 14 AND user_id = 'u-cert' AND tutorial_id = 'intro-to-rag' AND NOT certificate_earned;
