-- details are kept as the client sent them (checked and compacted by ordercast), so the database
-- never re-renders them: jsonb spelled a number like 1e131000 out in full, turning 8 bytes into
-- 131 KB on every read. Existing rows keep jsonb's rendering of the values they held, which is
-- valid JSON; reads serve {} for any that exceed the size limit.
ALTER TABLE orders ALTER COLUMN details TYPE text USING details::text;
