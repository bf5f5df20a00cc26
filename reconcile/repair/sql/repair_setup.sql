CREATE TEMP TABLE {input} (
{columns},
    UNIQUE (user_id, tutorial_id)
) ON COMMIT DROP;
CREATE TEMP TABLE {result} (
    user_id     text NOT NULL,
    tutorial_id text NOT NULL,
    outcome     text NOT NULL
) ON COMMIT DROP;
