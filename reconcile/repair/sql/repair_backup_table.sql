CREATE TABLE IF NOT EXISTS {backup} (
    user_id      text        NOT NULL,
    tutorial_id  text        NOT NULL,
    existed      boolean     NOT NULL,  -- false: the repair inserted this key
    original     jsonb,                 -- the whole row before the first repair (to_jsonb)
    backed_up_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tutorial_id)
);
