-- trent-record schema, version 3: each write stores fewer rows.

-- History keeps superseded versions only; the current version is the `resource` row
-- (Store::get_version reads both). Drop the copies of current versions.
DELETE FROM resource_history
WHERE EXISTS (
    SELECT 1 FROM resource r
    WHERE r.res_type = resource_history.res_type
      AND r.res_id = resource_history.res_id
      AND r.version = resource_history.version
);

-- Searches on `patient` and `subject` read resource.person_id (index resource_person);
-- the reference rows that copied it go.
DELETE FROM idx_reference
WHERE param IN ('patient', 'subject') AND target_type = 'Patient' AND res_type <> 'Patient';

-- ... which makes this the index of every search by person: equality on (person_id,
-- res_type) and the result order (res_id) in one index, so no planner is tempted to walk
-- the primary key in id order and filter every row of the type.
DROP INDEX resource_person;
CREATE INDEX resource_person ON resource (person_id, res_type, res_id);
