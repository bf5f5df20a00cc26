INSERT INTO pg_temp.{input}
SELECT * FROM jsonb_to_recordset({document}::jsonb)
    AS r({columns});
