-- Runs inside the sandbox against the SERVICE db.
CREATE TABLE greetings (id serial PRIMARY KEY, text text NOT NULL);
INSERT INTO greetings (text) VALUES ('hello'), ('world');
DO $$
BEGIN
  IF (SELECT count(*) FROM greetings) <> 2 THEN
    RAISE EXCEPTION 'expected 2 rows';
  END IF;
END $$;
SELECT string_agg(text, ' ' ORDER BY id) AS greeting FROM greetings;
